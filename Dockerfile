# Deployment example: the wheel in a slim image, run as a non-root user, health-checked on /healthz.
#   docker build -t segment-assistant .
#   docker run -p 7860:7860 -e SEGMENT_ASSISTANT_AUTH=analyst:change-me segment-assistant
# The model and knowledge base ship inside the wheel; mount others and point to them with
# SEGMENT_ASSISTANT_MODEL_DIR / SEGMENT_ASSISTANT_KNOWLEDGE_DIR.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY assistant ./assistant
COPY knowledge ./knowledge
COPY models ./models
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 GRADIO_ANALYTICS_ENABLED=False
COPY --from=build /dist /dist
RUN pip install --no-cache-dir /dist/*.whl && rm -rf /dist \
    && useradd --create-home --uid 10001 assistant
USER assistant
WORKDIR /home/assistant
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:7860/healthz', timeout=4).status == 200 else 1)"
CMD ["segment-assistant", "serve", "--host", "0.0.0.0", "--port", "7860"]
