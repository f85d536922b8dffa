module github.com/ai-webhook/ai-webhook/tools/localcluster

go 1.26.6

require github.com/ai-webhook/ai-webhook/test v0.0.0

replace (
	github.com/ai-webhook/ai-webhook/infra => ../../infra
	github.com/ai-webhook/ai-webhook/test => ../../test
	github.com/ai-webhook/ai-webhook/webhook => ../../webhook
)
