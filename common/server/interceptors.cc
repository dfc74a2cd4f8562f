#include "common/server/interceptors.h"

#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>

#include <algorithm>

#include "google/protobuf/descriptor.h"

namespace clustergov::server {
namespace {

// gRPC's own health service is not built from protobuf-generated code, so its descriptor is not in
// the generated pool; its methods are fixed by the health checking protocol.
constexpr std::string_view kHealthService = "grpc.health.v1.Health";

bool IsHealthMethod(std::string_view method) { return method == "Check" || method == "Watch"; }

// Hands the server's service list to a ServedMethods once the server object exists.
class ServiceListPlugin : public grpc::ServerBuilderPlugin {
 public:
  explicit ServiceListPlugin(std::atomic<const std::vector<std::string>*>* services) : services_(services) {}
  std::string name() override { return "clustergov_service_list"; }
  void InitServer(grpc::ServerInitializer* si) override { services_->store(si->GetServiceList()); }
  void Finish(grpc::ServerInitializer*) override {}
  void ChangeArguments(const std::string&, void*) override {}

 private:
  std::atomic<const std::vector<std::string>*>* services_;
};

class ServiceListOption : public grpc::ServerBuilderOption {
 public:
  explicit ServiceListOption(std::atomic<const std::vector<std::string>*>* services) : services_(services) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<ServiceListPlugin>(services_));
  }

 private:
  std::atomic<const std::vector<std::string>*>* services_;
};

class MalformedRequestInterceptor : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    // The handler never ran: the request did not deserialize.
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      malformed_ = true;
    }
    if (malformed_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      methods->ModifySendStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, kMalformedRequestMessage));
    }
    methods->Proceed();
  }

 private:
  bool malformed_ = false;
};

class MalformedRequestInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // Only where the one request message is read before the handler runs: in streams from the
  // client, a read without a message is the client's end of the stream.
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    using Type = grpc::experimental::ServerRpcInfo::Type;
    if (info->type() != Type::UNARY && info->type() != Type::SERVER_STREAMING) return nullptr;
    return new MalformedRequestInterceptor();
  }
};

}  // namespace

std::unique_ptr<grpc::ServerBuilderOption> ServedMethods::BuilderOption() {
  return std::make_unique<ServiceListOption>(&services_);
}

bool ServedMethods::Contains(std::string_view full_method) const {
  const std::vector<std::string>* services = services_.load();
  if (services == nullptr || full_method.size() < 4 || full_method.front() != '/') return false;
  auto slash = full_method.rfind('/');
  if (slash == 0 || slash + 1 == full_method.size()) return false;
  std::string_view service = full_method.substr(1, slash - 1);
  std::string_view method = full_method.substr(slash + 1);
  if (std::find(services->begin(), services->end(), service) == services->end()) return false;
  if (service == kHealthService) return IsHealthMethod(method);
  const auto* descriptor = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(std::string(service));
  return descriptor != nullptr && descriptor->FindMethodByName(std::string(method)) != nullptr;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CreateMalformedRequestInterceptorFactory() {
  return std::make_unique<MalformedRequestInterceptorFactory>();
}

}  // namespace clustergov::server
