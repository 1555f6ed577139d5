# portico in a container: a static (CGO off) binary on distroless, running
# as an unprivileged user. Static sites, SPAs and reverse proxying work as
# they are; CGI scripts and WSGI apps need their interpreters, so build
# your own image FROM a python or debian base for those.
#   docker build -t portico .
#   docker run -p 8080:8080 -v "$PWD/dist:/srv" portico serve -d /srv --spa 8080
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.1.0-dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -o /out/portico \
      -ldflags "-s -w -X portico/internal/cli.Version=${VERSION} -X portico/internal/cli.Commit=${COMMIT} -X portico/internal/cli.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
      ./cmd/portico

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/portico /usr/bin/portico
COPY packaging/deb/html /srv
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/bin/portico"]
CMD ["serve", "--browse=false", "-d", "/srv", "8080"]
