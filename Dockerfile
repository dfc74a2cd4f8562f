# clustergov images: one multi-stage build, one image holding every binary.
#
# Why one image: the six binaries share almost all of their bytes (gRPC, protobuf, Abseil and the
# shared core are dynamic Debian libraries), so one image is one build, one vulnerability scan and
# one tag to roll out; each Deployment/StatefulSet picks its binary with `command`. Per-service
# images would repeat the same runtime layer six times for a few hundred kilobytes of difference.
#
#   docker build -t clustergov:$(git rev-parse --short HEAD) .
#   docker build --build-arg RUN_TESTS=true -t clustergov:dev .   # also runs ./scripts/test.sh
#
# The build stage runs the commands CI runs before its tests (.ci/run -> scripts/test.sh ->
# scripts/install-deps.sh, scripts/build.sh), so a green CI proves them; RUN_TESTS=true runs
# scripts/test.sh itself too (off by default: CI ran it on the same commit; it needs npm). tests/deploy/docker_test.sh checks this file
# against the real build: every copied path exists and the runtime stage installs exactly the
# Debian packages that the binaries' shared libraries come from.

ARG DEBIAN_IMAGE=debian:12
ARG RUNTIME_IMAGE=debian:12-slim

FROM ${DEBIAN_IMAGE} AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN ./scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN ./scripts/build.sh
ARG RUN_TESTS=false
RUN if [ "$RUN_TESTS" = "true" ]; then ./scripts/test.sh; fi
RUN mkdir -p /out/bin /out/share \
 && install -m 0755 -s build/services/clusters/clustergov-clusters build/services/enterprises/clustergov-enterprises \
      build/services/support/clustergov-support build/services/promotion/clustergov-promotion \
      build/services/talent/clustergov-talent build/services/gateway/clustergov-gateway \
      build/common/clustergov-token build/common/clustergov-backup /out/bin/ \
 && install -m 0644 build/clustergov_descriptors.pb /out/share/ \
 && cp -r build/console /out/share/console

FROM ${RUNTIME_IMAGE} AS runtime
# Runtime libraries only (the shared libraries the binaries link; see the header).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libabsl20220623 libb64-0d libc-ares2 libcivetweb1 libgrpc++1.51 libgrpc29 \
      libhiredis0.14 libjansson4 libjwt0 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
      libprotobuf32 libre2-9 libsqlite3-0 libssl3 libstdc++6 zlib1g \
      libpq5 libcom-err2 libffi8 libgmp10 libgnutls30 libgssapi-krb5-2 libhogweed6 libidn2-0 \
      libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 libldap-2.5-0 libnettle8 libp11-kit0 \
      libsasl2-2 libtasn1-6 libunistring2 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 clustergov \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin clustergov \
 && mkdir -p /var/lib/clustergov && chown 10001:10001 /var/lib/clustergov
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/share/clustergov_descriptors.pb /usr/share/clustergov/clustergov_descriptors.pb
# The web console's static files, served by the gateway (--console_dir).
COPY --from=build /out/share/console/ /usr/share/clustergov/console/
# The store lives here (a volume in Kubernetes); the root filesystem can be read-only.
WORKDIR /var/lib/clustergov
VOLUME ["/var/lib/clustergov"]
USER 10001:10001
# gRPC 50051-50055, HTTP 8080, metrics 9451-9460. No default command: each workload names its
# binary (/usr/local/bin/clustergov-<service>).
EXPOSE 50051 50052 50053 50054 50055 8080 9451 9452 9453 9454 9455 9460
