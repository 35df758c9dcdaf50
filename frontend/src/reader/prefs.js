// The reader's viewing preferences (linked views, ...), kept in this browser per reader, so a shared reading
// workstation keeps each reader's own choices. Nothing here is sent to the server.

export function createPrefs(reader, storage = safeLocalStorage()) {
  const key = `readerstudy:prefs:${reader || 'anonymous'}`;
  const read = () => {
    try {
      const value = JSON.parse(storage?.getItem(key) || '{}');
      return value && typeof value === 'object' && !Array.isArray(value) ? value : {};
    } catch {
      return {};
    }
  };
  return {
    get(name, fallback) {
      const value = read()[name];
      return value === undefined ? fallback : value;
    },
    set(name, value) {
      try {
        storage?.setItem(key, JSON.stringify({ ...read(), [name]: value }));
      } catch {
        /* storage full or blocked: the choice holds for this page only */
      }
    },
  };
}

function safeLocalStorage() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}
