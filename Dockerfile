# Multi-stage build of the admission server: a static binary on distroless, non-root.
FROM golang:1.26 AS build
WORKDIR /src/webhook
COPY webhook/go.mod webhook/go.sum ./
RUN go mod download
COPY webhook/ ./
RUN CGO_ENABLED=0 GOWORK=off go build -trimpath -ldflags="-s -w" -o /out/ai-webhook ./cmd/ai-webhook

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ai-webhook /ai-webhook
# 65532 is distroless' nonroot user; numeric so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/ai-webhook"]
CMD ["serve"]
