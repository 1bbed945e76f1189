# tokenbouncer container image: a build stage, then a slim Debian 12 runtime with only the
# runtime libraries, running as a non-root user under tini (signals reach the pooler; helper
# processes are reaped).
#
#   podman build -t tokenbouncer .            (or docker build; --format docker keeps HEALTHCHECK)
#   podman run --rm -p 6432:6432 -p 9127:9127 \
#       -v ./tokenbouncer.ini:/etc/tokenbouncer/config/tokenbouncer.ini:ro \
#       -v ./userlist.txt:/etc/tokenbouncer/secret/userlist.txt:ro tokenbouncer
#
# The configuration is read from /etc/tokenbouncer/config/tokenbouncer.ini (mount it; give another
# path as the command). HEALTHCHECK asks /healthz at $TB_HEALTH_URL: set metrics_listen to
# 0.0.0.0:9127 (or change the variable). Stop with SIGINT (the image's STOPSIGNAL): transactions
# in flight finish, then the pooler exits; SIGTERM waits for every client to leave.
ARG BASE_IMAGE=debian:12-slim

FROM ${BASE_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	build-essential autoconf automake libtool pkg-config \
	libevent-dev libssl-dev libcurl4-openssl-dev libpq-dev libinih-dev libjansson-dev \
	libexpat1-dev libsystemd-dev libicu-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN rm -rf build build-demo && ./autogen.sh && mkdir /build && cd /build \
 && /src/configure --prefix=/usr --sysconfdir=/etc && make -j"$(nproc)" tokenbouncer \
 && make install-exec DESTDIR=/out

FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	libevent-2.1-7 libevent-openssl-2.1-7 libssl3 libcurl4 libinih1 libjansson4 libexpat1 libicu72 libpq5 \
	libsystemd0 ca-certificates tini curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tokenbouncer \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin tokenbouncer \
 && mkdir -p /etc/tokenbouncer/config /etc/tokenbouncer/secret
COPY --from=build /out/usr/bin/tokenbouncer /usr/bin/tokenbouncer
COPY etc/tokenbouncer.ini /usr/share/doc/tokenbouncer/examples/tokenbouncer.ini
USER 10001:10001
EXPOSE 6432 9127
ENV TB_HEALTH_URL=http://127.0.0.1:9127/healthz
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
	CMD ["/bin/sh", "-c", "curl -fsS --max-time 2 \"$TB_HEALTH_URL\" >/dev/null"]
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/tokenbouncer"]
CMD ["/etc/tokenbouncer/config/tokenbouncer.ini"]
