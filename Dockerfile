# syntax=docker/dockerfile:1
# Liaison gateway image. Multi-stage: compile TypeScript in a build stage, run
# the compiled dist/ with production dependencies only, as a non-root user.
# The gateway needs a NATS server with JetStream (NATS_URL); see docker-compose.yml.
# test/docker.test.ts keeps CMD in step with package.json's start script.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: npm ci (all dependencies) + tsc -------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied; tsc runs below.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY broker ./broker
COPY adapters ./adapters
COPY certs ./certs
COPY bench ./bench
COPY schemas ./schemas
RUN npx tsc -p tsconfig.build.json

# ---- runtime: production dependencies, dist/ and schemas/ ----------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    LIAISON_HOST=0.0.0.0 \
    LIAISON_PORT=8080 \
    LIAISON_OPS_PORT=9180 \
    LIAISON_DATA_DIR=/var/lib/liaison
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 && npm cache clean --force \
 && mkdir -p /var/lib/liaison \
 && chown node:node /var/lib/liaison
COPY --from=build /app/dist ./dist
COPY schemas ./schemas
COPY bin ./bin
COPY docs/examples/notices ./docs/examples/notices
# The broker's keys and the demo network live in the data dir: mount a volume there.
VOLUME ["/var/lib/liaison"]
# The official Node image's unprivileged user (uid 1000).
USER node
EXPOSE 8080
# Liveness only (GET /readyz also checks NATS and the streams; use it for load balancers).
# On the operations listener (plain HTTP on the container's loopback), which answers
# whatever LIAISON_TLS and LIAISON_MTLS say: under LIAISON_MTLS=required the API port
# would refuse this check in the TLS handshake. Keep LIAISON_OPS_PORT non-zero.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.LIAISON_OPS_PORT || 9180) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# package.json "start" without its "prestart" build step (dist/ is built above).
CMD ["node", "--max-old-space-size=1024", "dist/broker/main.js"]
