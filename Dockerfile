# The KubeStack AI image: worker, beat and Flower all run from it (see compose.yaml).
FROM python:3.11.9-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kubestack_ai kubestack_ai
RUN pip install --no-cache-dir '.[postgresql]' \
 && useradd --system --home-dir /var/lib/ksa --create-home ksa
USER ksa
ENV KSA_HOME=/var/lib/ksa
CMD ["celery", "-A", "kubestack_ai.workers", "worker", "--loglevel", "info"]
