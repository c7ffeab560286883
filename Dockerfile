# One image for every Kurz binary: `kurz` (all-in-one), `command-api`, `query-api`, `projector`.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p kurz -p kurz-command-api -p kurz-query-api -p kurz-projector \
      --features kurz-service-kit/otlp \
 && mkdir /out \
 && cp target/release/kurz target/release/command-api target/release/query-api target/release/projector /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/kurz kurz \
 && mkdir -p /var/lib/kurz/click-spool && chown -R kurz /var/lib/kurz
COPY --from=build /out/ /usr/local/bin/
USER kurz
WORKDIR /var/lib/kurz
ENV KURZ_HTTP__LISTEN=0.0.0.0:8080 KURZ_LOG__FORMAT=json
EXPOSE 8080
CMD ["kurz"]
