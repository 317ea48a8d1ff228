# bootdepot: HTTP boot server for iPXE.
# Runs the compiled JavaScript (dist/, built here) on Node 24.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# All dependencies (TypeScript among them); `npm ci` runs the build (the prepare script).
RUN npm ci --no-audit --no-fund

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only (no build here: dist/ comes from the build stage). The pinned
# `node` devDependency is for machines whose system Node is older.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    BOOTDEPOT_DATA_DIR=/data \
    BOOTDEPOT_ASSETS_DIR=/assets \
    BOOTDEPOT_CACHE_DIR=/cache \
    BOOTDEPOT_PORT=8080
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
COPY config/bootdepot.yaml /etc/bootdepot/bootdepot.yaml
# Demo data; mount your own data directory over /data.
COPY config/data /data
RUN mkdir -p /assets /cache && chown -R node:node /data /assets /cache
USER node
VOLUME ["/data", "/assets", "/cache"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.BOOTDEPOT_PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "--max-semi-space-size=2", "bin/bootdepot.js"]
CMD ["serve", "--config", "/etc/bootdepot/bootdepot.yaml"]
