package webhookstack

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// readPrevious must read the last outputs even when the root Stack's registration, which the SDK
// sends asynchronously, is answered late. The SDK's mocks cannot show this (their monitor answers
// the root at once and never knows its state), so a fake monitor plays the engine's part: like
// the engine's getResource it knows only the states this update has registered, the root Stack's
// (with the last outputs, as a same step keeps them) once it answers that registration.
func TestReadPreviousWaitsForTheRootStacksRegistration(t *testing.T) {
	t.Parallel()
	deployed := map[string]any{
		OutputCACertPEM: "old CA", OutputNamespace: "ai-webhook", OutputServiceName: "ai-webhook",
		OutputMutatingWebhookName: "ai-mutating-webhook", OutputServingCertExpiry: "2027-05-02T10:00:00Z",
	}
	tests := []struct {
		name        string
		lastOutputs map[string]any // the root Stack's state; nil on a first install
		want        previous
	}{
		{"a deployed stack", deployed, previous{
			deployed: true, caCertPEM: "old CA", namespace: "ai-webhook", service: "ai-webhook",
			configName: "ai-mutating-webhook", servingCertExpiry: time.Date(2027, 5, 2, 10, 0, 0, 0, time.UTC),
		}},
		{"a first install", nil, previous{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mon := &lateRootMonitor{delay: 300 * time.Millisecond, lastOutputs: tt.lastOutputs}
			srv := grpc.NewServer()
			pulumirpc.RegisterResourceMonitorServer(srv, mon)
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = srv.Serve(lis) }()
			t.Cleanup(srv.Stop)

			ctx, err := pulumi.NewContext(context.Background(), pulumi.RunInfo{Project: "ai-webhook", Stack: "test", MonitorAddr: lis.Addr().String()})
			if err != nil {
				t.Fatal(err)
			}
			var got previous
			err = pulumi.RunWithContext(ctx, func(ctx *pulumi.Context) error {
				var component pulumi.ResourceState
				if err := ctx.RegisterComponentResource(ComponentType, "ai-webhook", &component); err != nil {
					return err
				}
				got, err = readPrevious(ctx, &component)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("previous = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// lateRootMonitor is a resource monitor that answers the root Stack's registration after delay
// and getResource as the engine does: "unknown resource" for a URN it has not answered yet.
type lateRootMonitor struct {
	pulumirpc.UnimplementedResourceMonitorServer
	delay       time.Duration
	lastOutputs map[string]any

	mu         sync.Mutex
	registered map[string]map[string]any // URN -> state
}

func (m *lateRootMonitor) GetDeploymentInfo(context.Context, *emptypb.Empty) (*pulumirpc.DeploymentInfo, error) {
	return &pulumirpc.DeploymentInfo{}, nil
}

func (m *lateRootMonitor) RegisterResource(_ context.Context, req *pulumirpc.RegisterResourceRequest) (*pulumirpc.RegisterResourceResponse, error) {
	var parentType tokens.Type
	if req.GetParent() != "" {
		parentType = resource.URN(req.GetParent()).QualifiedType()
	}
	urn := resource.NewURN("test", "ai-webhook", parentType, tokens.Type(req.GetType()), req.GetName())
	state := map[string]any{}
	if req.GetType() == string(resource.RootStackType) {
		time.Sleep(m.delay)
		if m.lastOutputs != nil {
			state = m.lastOutputs
		}
	}
	m.mu.Lock()
	if m.registered == nil {
		m.registered = map[string]map[string]any{}
	}
	m.registered[string(urn)] = state
	m.mu.Unlock()
	return &pulumirpc.RegisterResourceResponse{Urn: string(urn)}, nil
}

func (m *lateRootMonitor) RegisterResourceOutputs(context.Context, *pulumirpc.RegisterResourceOutputsRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (m *lateRootMonitor) Invoke(_ context.Context, req *pulumirpc.ResourceInvokeRequest) (*pulumirpc.ResourceInvokeResponse, error) {
	if req.GetTok() != "pulumi:pulumi:getResource" {
		return nil, fmt.Errorf("unexpected invoke %s", req.GetTok())
	}
	urn, _ := req.GetArgs().AsMap()["urn"].(string)
	m.mu.Lock()
	state, ok := m.registered[urn]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("invocation of pulumi:pulumi:getResource returned an error: unknown resource %s", urn)
	}
	ret, err := plugin.MarshalProperties(resource.NewPropertyMapFromMap(map[string]any{
		"urn": urn, "id": "", "state": state,
	}), plugin.MarshalOptions{})
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ResourceInvokeResponse{Return: ret}, nil
}
