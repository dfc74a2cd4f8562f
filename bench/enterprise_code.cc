// Prints the credit code clustergov-bench-fill-enterprises gives the enterprise with a given index,
// so that bench/run.sh can address one of the filled enterprises without a lookup:
//
//   clustergov-bench-enterprise-code --index=12345   # -> 91150400BM0012345X (for example)
//
// The formula is the fill tool's: "91" + Regions()[index % regions] + "BM" + 7-digit index + the
// GB 32100 check character. (A wrong code would show as NOT_FOUND in run.sh's check call.)

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "common/refdata/refdata.h"
#include "common/refdata/uscc.h"

ABSL_FLAG(int, index, 0, "index of the enterprise, as the fill tool numbers them (0 .. 9999999)");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int i = absl::GetFlag(FLAGS_index);
  if (i < 0 || i > 9999999) {
    std::fprintf(stderr, "clustergov-bench-enterprise-code: --index must be 0 .. 9999999\n");
    return 2;
  }
  const auto& regions = clustergov::refdata::Regions();
  std::string first17 = absl::StrFormat("91%sBM%07d", std::string(regions[i % regions.size()].code), i);
  char check = clustergov::refdata::UsccCheckCharacter(first17);
  if (check == '\0') {
    std::fprintf(stderr, "clustergov-bench-enterprise-code: %s is not 17 code characters\n", first17.c_str());
    return 1;
  }
  std::printf("%s%c\n", first17.c_str(), check);
  return 0;
}
