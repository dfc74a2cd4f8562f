// clustergov-token: mints a bearer token for development, tests and operators.
//
//   clustergov-token --sub=alice --org=departments/industry_it --roles=government,admin
//   clustergov-token --private_key_file=key.pem --algorithm=ES256 --sub=svc --org=agencies/x
//       --roles=service --ttl=600
//
// HS256 takes the secret from --secret or, preferably (command lines are visible to other users),
// from the environment variable CLUSTERGOV_AUTH_HS256_SECRET. The token goes to stdout; errors
// go to stderr with exit status 2 (bad flag values and unknown flags included).

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "common/auth/auth.h"
#include "common/auth/principal.h"

ABSL_FLAG(std::string, secret, "",
          "HS256 secret (at least 32 bytes). Defaults to $CLUSTERGOV_AUTH_HS256_SECRET.");
ABSL_FLAG(std::string, private_key_file, "",
          "PEM private key file for RS256/ES256 (use with --algorithm).");
ABSL_FLAG(std::string, algorithm, "",
          "HS256, RS256 or ES256. Default: HS256, or required with --private_key_file.");
ABSL_FLAG(std::string, sub, "", "Subject: the caller's identity (required).");
ABSL_FLAG(std::string, org, "",
          "Organization resource name the caller acts for, e.g. departments/industry_it "
          "(required).");
ABSL_FLAG(std::string, roles, "",
          "Comma-separated roles: government, promotion_org, enterprise, talent, auditor, admin, expert, "
          "service (required).");
ABSL_FLAG(int64_t, ttl, 3600, "Lifetime in seconds (positive).");
ABSL_FLAG(std::string, issuer, "clustergov-dev", "iss claim.");
ABSL_FLAG(std::string, audience, "clustergov", "aud claim.");

namespace clustergov {
namespace {

constexpr char kSecretEnv[] = "CLUSTERGOV_AUTH_HS256_SECRET";
constexpr int kUsageError = 2;

constexpr absl::string_view kFlagNames[] = {
    "sub", "org", "roles", "ttl", "issuer", "audience", "secret", "private_key_file", "algorithm",
};

constexpr auto& kRoleNames = roles::kAll;

int Fail(const std::string& message) {
  std::cerr << "clustergov-token: error: " << message << "\n";
  return kUsageError;
}

bool IsKnownRole(absl::string_view role) {
  for (absl::string_view known : kRoleNames) {
    if (known == role) {
      return true;
    }
  }
  return false;
}

std::string KnownRoles() {
  std::string out;
  for (absl::string_view role : kRoleNames) {
    if (!out.empty()) {
      out += ", ";
    }
    out.append(role.data(), role.size());
  }
  return out;
}

bool ReadFile(const std::string& path, std::string* contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    return false;
  }
  *contents = buffer.str();
  return true;
}

absl::CommandLineFlag* FindToolFlag(absl::string_view name) {
  for (absl::string_view known : kFlagNames) {
    if (known == name) {
      return absl::FindCommandLineFlag(name);
    }
  }
  return nullptr;
}

void PrintUsage() {
  std::cout << "Mints a clustergov bearer token and prints it to stdout.\n"
               "  clustergov-token --sub=alice --org=departments/industry_it "
               "--roles=government,admin\n"
               "HS256 takes --secret or $"
            << kSecretEnv << "; RS256/ES256 take --private_key_file with --algorithm.\n\nFlags:\n";
  for (absl::string_view name : kFlagNames) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) {
      continue;
    }
    std::cout << "  --" << name << "  " << flag->Help();
    if (!flag->DefaultValue().empty()) {
      std::cout << " (default: " << flag->DefaultValue() << ")";
    }
    std::cout << "\n";
  }
}

enum class ParseResult { kOk, kHelp, kError };

// Sets the flags from "--name=value" / "--name value" arguments. absl::ParseCommandLine() would
// exit with status 1 on a bad flag; this tool promises status 2 for every bad input, so the flags
// are set through the reflection API instead.
ParseResult ParseFlags(int argc, char** argv, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-help" || arg == "-h" || arg == "--helpfull") {
      return ParseResult::kHelp;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      *error = "unexpected argument \"" + std::string(arg) + "\"; all inputs are --flags";
      return ParseResult::kError;
    }
    arg.remove_prefix(arg[1] == '-' ? 2 : 1);
    absl::string_view name = arg;
    absl::string_view value;
    bool has_value = false;
    const size_t eq = arg.find('=');
    if (eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    absl::CommandLineFlag* flag = FindToolFlag(name);
    if (flag == nullptr) {
      *error = "unknown flag --" + std::string(name) + " (see --help)";
      return ParseResult::kError;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        *error = "missing value for --" + std::string(name);
        return ParseResult::kError;
      }
      value = argv[++i];
    }
    std::string parse_error;
    if (!flag->ParseFrom(value, &parse_error)) {
      *error = "bad value for --" + std::string(name) + ": " + parse_error;
      return ParseResult::kError;
    }
  }
  return ParseResult::kOk;
}

int Run(int argc, char** argv) {
  std::string parse_error;
  switch (ParseFlags(argc, argv, &parse_error)) {
    case ParseResult::kHelp:
      PrintUsage();
      return 0;
    case ParseResult::kError:
      return Fail(parse_error);
    case ParseResult::kOk:
      break;
  }

  TokenSpec spec;
  spec.subject = std::string(absl::StripAsciiWhitespace(absl::GetFlag(FLAGS_sub)));
  spec.organization = std::string(absl::StripAsciiWhitespace(absl::GetFlag(FLAGS_org)));
  spec.issuer = absl::GetFlag(FLAGS_issuer);
  spec.audience = absl::GetFlag(FLAGS_audience);
  spec.ttl_seconds = absl::GetFlag(FLAGS_ttl);
  if (spec.subject.empty()) {
    return Fail("--sub is required");
  }
  if (spec.organization.empty()) {
    return Fail("--org is required (an organization resource name, e.g. departments/industry_it)");
  }
  if (spec.issuer.empty() || spec.audience.empty()) {
    return Fail("--issuer and --audience must not be empty");
  }
  if (spec.ttl_seconds <= 0) {
    return Fail("--ttl must be a positive number of seconds");
  }
  for (absl::string_view piece : absl::StrSplit(absl::GetFlag(FLAGS_roles), ',')) {
    std::string role(absl::StripAsciiWhitespace(piece));
    if (role.empty()) {
      continue;
    }
    if (!IsKnownRole(role)) {
      return Fail("unknown role \"" + role + "\"; known roles: " + KnownRoles());
    }
    spec.roles.push_back(std::move(role));
  }
  if (spec.roles.empty()) {
    return Fail("--roles is required (comma-separated; known roles: " + KnownRoles() + ")");
  }

  const std::string key_file = absl::GetFlag(FLAGS_private_key_file);
  std::string algorithm = absl::GetFlag(FLAGS_algorithm);
  std::string key;
  if (!key_file.empty()) {
    if (!absl::GetFlag(FLAGS_secret).empty()) {
      return Fail("give either --secret or --private_key_file, not both");
    }
    if (algorithm != "RS256" && algorithm != "ES256") {
      return Fail("--private_key_file needs --algorithm=RS256 or --algorithm=ES256");
    }
    if (!ReadFile(key_file, &key)) {
      return Fail("cannot read --private_key_file \"" + key_file + "\"");
    }
  } else {
    if (algorithm.empty()) {
      algorithm = "HS256";
    }
    if (algorithm != "HS256") {
      return Fail("--algorithm=" + algorithm + " needs --private_key_file; HS256 uses a secret");
    }
    key = absl::GetFlag(FLAGS_secret);
    if (key.empty()) {
      const char* env = std::getenv(kSecretEnv);
      key = env != nullptr ? env : "";
    }
    if (key.empty()) {
      return Fail(std::string("no key: pass --secret, set ") + kSecretEnv +
                  ", or use --private_key_file with --algorithm");
    }
  }

  absl::StatusOr<std::string> token = MintToken(spec, algorithm, key);
  if (!token.ok()) {
    return Fail(std::string(token.status().message()));
  }
  std::cout << *token << "\n";
  std::cout.flush();
  if (!std::cout) {
    std::cerr << "clustergov-token: error: cannot write the token to stdout\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace clustergov

int main(int argc, char** argv) { return clustergov::Run(argc, argv); }
