# One image for web and workers. The viewer bundle is built in a Node stage and copied in as static files.
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 READERSTUDY_VAR_DIR=/var/lib/readerstudy
WORKDIR /app
# tesseract-ocr: every uploaded image is checked for burned-in text (apps/privacy); without it series are held.
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt ./
# torch is pinned to the CPU wheel version; the GPU worker image overrides it with the CUDA build (see compose).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir --extra-index-url "$TORCH_INDEX_URL" -r requirements.txt
# The GPU worker image swaps onnxruntime for its CUDA build of the same version, so that registered ONNX models run
# on the CUDA execution provider (elsewhere they run on the CPU provider).
ARG ONNXRUNTIME_GPU=0
RUN if [ "$ONNXRUNTIME_GPU" = 1 ]; then \
      version=$(pip show onnxruntime | sed -n 's/^Version: //p') && pip uninstall -y onnxruntime \
      && pip install --no-cache-dir "onnxruntime-gpu==$version"; fi
COPY . .
COPY --from=frontend /src/frontend/dist ./frontend/dist
RUN READERSTUDY_ALLOW_INSECURE_KEY=1 python manage.py collectstatic --noinput \
    && useradd --system --home /app readerstudy && mkdir -p /var/lib/readerstudy \
    && chown readerstudy /var/lib/readerstudy
USER readerstudy
EXPOSE 8000
CMD ["gunicorn", "readerstudy.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--timeout", "120"]
