// Fuzzes the unified social credit code validator (common/refdata/uscc.h). A code is accepted
// only when it has 18 characters of the alphabet ending in its check character; anything else is
// refused with INVALID_ARGUMENT on the field. Any 17 characters of the alphabet get a check
// character of the alphabet, and no other 18th character is accepted after them.

#include <cstdint>
#include <string>

#include "common/refdata/uscc.h"
#include "tests/fuzz/fuzz_support.h"

using clustergov::refdata::kUsccAlphabet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input = clustergov::fuzz::AsView(data, size);
  absl::Status status = clustergov::refdata::ValidateUscc(input, "enterprise.uscc");
  if (status.ok()) {
    FUZZ_CHECK(input.size() == 18, input);
    for (char c : input) FUZZ_CHECK(kUsccAlphabet.find(c) != absl::string_view::npos, input);
    FUZZ_CHECK(clustergov::refdata::UsccCheckCharacter(input.substr(0, 17)) == input[17], input);
  } else {
    clustergov::fuzz::CheckRefusal(status, {absl::StatusCode::kInvalidArgument}, input);
  }

  // The first 17 bytes mapped onto the alphabet.
  if (size >= 17) {
    std::string first17;
    for (size_t i = 0; i < 17; ++i) first17.push_back(kUsccAlphabet[data[i] % kUsccAlphabet.size()]);
    char check = clustergov::refdata::UsccCheckCharacter(first17);
    FUZZ_CHECK(check != '\0' && kUsccAlphabet.find(check) != absl::string_view::npos, first17);
    for (char other : kUsccAlphabet) {
      if (other != check) FUZZ_CHECK(!clustergov::refdata::ValidateUscc(first17 + other).ok(), first17 + other);
    }
  }
  if (size != 17) FUZZ_CHECK(clustergov::refdata::UsccCheckCharacter(input) == '\0', input);
  return 0;
}
