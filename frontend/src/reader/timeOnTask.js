// Visible time on a task: the clock runs only while the tab is visible. The running total is
// kept in sessionStorage per task so a reload does not reset it.

export function createTaskClock(key, { now = () => performance.now(), storage = safeSessionStorage(), doc = document } = {}) {
  const storageKey = `readerstudy:seconds:${key}`;
  let accumulated = Number(storage?.getItem(storageKey)) || 0;
  let startedAt = doc.visibilityState === 'visible' ? now() : null;

  const running = () => (startedAt === null ? 0 : (now() - startedAt) / 1000);
  const persist = () => storage?.setItem(storageKey, String(accumulated + running()));
  const onVisibility = () => {
    if (doc.visibilityState === 'visible') {
      if (startedAt === null) startedAt = now();
    } else if (startedAt !== null) {
      accumulated += running();
      startedAt = null;
      persist();
    }
  };
  doc.addEventListener('visibilitychange', onVisibility);
  const onHide = () => persist();
  window.addEventListener('pagehide', onHide);

  return {
    seconds: () => accumulated + running(),
    stop() {
      doc.removeEventListener('visibilitychange', onVisibility);
      window.removeEventListener('pagehide', onHide);
      const total = accumulated + running();
      storage?.removeItem(storageKey);
      return total;
    },
  };
}

function safeSessionStorage() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}
