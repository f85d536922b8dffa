module github.com/ai-webhook/ai-webhook/webhook

go 1.26.0

require (
	github.com/evanphx/json-patch/v5 v5.9.11 // indirect
	github.com/prometheus/client_golang v1.23.2 // indirect
	go.yaml.in/yaml/v2 v2.4.4 // indirect
	k8s.io/api v0.37.2 // indirect
	k8s.io/apimachinery v0.37.2 // indirect
	k8s.io/utils v0.0.0-20261023123148-ca04ba58ecab // indirect
	sigs.k8s.io/yaml v1.6.0 // indirect
)
