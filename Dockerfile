# lsmigrate in a container: for the Kubernetes Job in docs/kubernetes-job.yaml, or `docker run` beside
# a Label Studio container with the same volume mounted read-only.
FROM python:3.11-slim
WORKDIR /opt/lsmigrate
COPY pyproject.toml README.md ./
COPY lsmigrate ./lsmigrate
RUN pip install --no-cache-dir . && useradd --uid 1001 --create-home lsmigrate
USER 1001
ENV XDG_STATE_HOME=/state
ENTRYPOINT ["lsmigrate"]
CMD ["--help"]
