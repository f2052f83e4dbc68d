# The Berth image: one static binary FROM scratch. `make image` stages the
# build context in .cache/image (the binary, CA certificates, passwd and
# group files with an unprivileged user, the default config) and builds
# this file there, so no base image is pulled.
FROM scratch

ARG VERSION=dev
LABEL org.opencontainers.image.title="Berth" \
      org.opencontainers.image.description="OCI / Docker registry server, a drop-in replacement for CNCF Distribution" \
      org.opencontainers.image.source="https://github.com/berth-registry/berth" \
      org.opencontainers.image.version="${VERSION}"

COPY berth /berth
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY passwd group /etc/
COPY config.yml /etc/berth/config.yml
# Distribution's path is a link to Berth's: a config bind-mounted at either
# path is the one `serve` reads, so registry:2 run commands work unchanged.
COPY etc-docker-registry/ /etc/docker/registry/
COPY --chown=65532:65532 registry/ /var/lib/registry/

USER 65532:65532
VOLUME /var/lib/registry
EXPOSE 5000
ENTRYPOINT ["/berth"]
CMD ["serve", "/etc/berth/config.yml"]
