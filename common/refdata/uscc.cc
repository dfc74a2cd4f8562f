#include "common/refdata/uscc.h"

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/refdata/refdata.h"
#include "common/status/status.h"

namespace clustergov::refdata {
namespace {

constexpr size_t kCodeLength = 18;
static_assert(kUsccAlphabet.size() == 31, "GB 32100-2015 uses a 31-character alphabet");

// Weights of positions 1-17: 3^(i-1) mod 31.
constexpr std::array<int, 17> kWeights = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};

constexpr absl::string_view kAlphabetDescription =
    "the code is written in 0-9 and A-Z without I, O, S, V, Z";

// GB 32100-2015 appendix A: the entity types (position 2) each registration authority
// (position 1) issues.
struct Authority {
  char code;
  absl::string_view entity_types;
};
constexpr std::array<Authority, 12> kAuthorities = {{
    {'1', "1239"},    // 机构编制: 机关, 事业单位, 中央编办直接管理机构编制的群众团体, 其他
    {'2', "19"},      // 外交: 外国常驻新闻机构, 其他
    {'3', "123459"},  // 司法行政: 律师执业机构, 公证处, 基层法律服务所, 司法鉴定机构, 仲裁委员会, 其他
    {'4', "19"},      // 文化: 外国在华文化中心, 其他
    {'5', "1239"},    // 民政: 社会团体, 民办非企业单位, 基金会, 其他
    {'6', "129"},     // 旅游: 外国旅游部门常驻代表机构, 港澳台地区旅游部门常驻内地代表机构, 其他
    {'7', "129"},     // 宗教: 宗教活动场所, 宗教院校, 其他
    {'8', "19"},      // 工会: 基层工会, 其他
    {'9', "123"},     // 工商: 企业, 个体工商户, 农民专业合作社
    {'A', "19"},      // 中央军委改革和编制办公室: 军队事业单位, 其他
    {'N', "1239"},    // 农业: 组级集体经济组织, 村级集体经济组织, 乡镇级集体经济组织, 其他
    {'Y', "1"},       // 其他
}};

// The first two digits of GB/T 2260 codes of the province-level divisions.
constexpr std::array<absl::string_view, 34> kProvinces = {
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34",
    "35", "36", "37", "41", "42", "43", "44", "45", "46", "50", "51", "52",
    "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
};

constexpr absl::string_view kInnerMongolia = "15";

int CharacterValue(char c) {
  size_t pos = kUsccAlphabet.find(c);
  return pos == absl::string_view::npos ? -1 : static_cast<int>(pos);
}

// Splits `s` into characters: UTF-8 sequences where well-formed, single bytes otherwise, so that
// positions in messages count what a person sees (e.g. full-width digits typed by mistake).
std::vector<absl::string_view> SplitCharacters(absl::string_view s) {
  std::vector<absl::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char lead = static_cast<unsigned char>(s[i]);
    size_t n = 1;
    if (lead >= 0xF0 && lead <= 0xF4) {
      n = 4;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      n = 3;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      n = 2;
    }
    if (n > 1) {
      bool well_formed = i + n <= s.size();
      for (size_t k = 1; well_formed && k < n; ++k) {
        well_formed = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
      }
      // RFC 3629: no overlong forms, no UTF-16 surrogates (ED A0..BF), nothing above U+10FFFF.
      if (well_formed) {
        unsigned char second = static_cast<unsigned char>(s[i + 1]);
        well_formed = !(lead == 0xE0 && second < 0xA0) && !(lead == 0xED && second > 0x9F) &&
                      !(lead == 0xF0 && second < 0x90) && !(lead == 0xF4 && second > 0x8F);
      }
      if (!well_formed) {
        n = 1;
      }
    }
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

// `c` in double quotes; single bytes that are not printable ASCII are C-escaped.
std::string Quote(absl::string_view c) {
  if (c.size() == 1) {
    return absl::StrCat("\"", absl::CHexEscape(c), "\"");
  }
  return absl::StrCat("\"", c, "\"");
}

std::string Quote(char c) { return Quote(absl::string_view(&c, 1)); }

std::string AllowedList(absl::string_view chars) {
  std::vector<std::string> items;
  for (char c : chars) {
    items.push_back(std::string(1, c));
  }
  return absl::StrJoin(items, ", ");
}

const Authority* FindAuthority(char c) {
  for (const auto& a : kAuthorities) {
    if (a.code == c) {
      return &a;
    }
  }
  return nullptr;
}

bool IsProvince(absl::string_view two_digits) {
  for (absl::string_view p : kProvinces) {
    if (p == two_digits) {
      return true;
    }
  }
  return false;
}

// Positions 3-8; `division` is known to be 6 characters of the alphabet. Empty when valid.
std::string CheckDivision(absl::string_view division) {
  for (char c : division) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return absl::StrCat("administrative division code (characters 3-8) ", Quote(division),
                          " must be 6 digits");
    }
  }
  absl::string_view province = division.substr(0, 2);
  if (!IsProvince(province)) {
    return absl::StrCat("administrative division code (characters 3-8) ", Quote(division),
                        " does not start with a province-level code (", Quote(province),
                        " is not one)");
  }
  if (province == kInnerMongolia) {
    std::string league = absl::StrCat(division.substr(0, 4), "00");
    if (division.substr(0, 4) != "1500" && !IsRegionCode(league)) {
      return absl::StrCat("administrative division code (characters 3-8) ", Quote(division),
                          " is not in a league or city of Inner Mongolia (", Quote(league),
                          " is not a league-level region)");
    }
  }
  return "";
}

// Checks every rule in order; the description of the first one broken, or empty when valid.
std::string Check(absl::string_view code) {
  std::vector<absl::string_view> chars = SplitCharacters(code);
  if (chars.size() != kCodeLength) {
    if (chars.empty()) {
      return absl::StrCat("is empty; must be ", kCodeLength, " characters");
    }
    return absl::StrCat("must be ", kCodeLength, " characters, got ", chars.size());
  }

  for (size_t i = 0; i < chars.size(); ++i) {
    absl::string_view c = chars[i];
    if (c.size() == 1 && CharacterValue(c[0]) >= 0) {
      continue;
    }
    if (c.size() == 1 && absl::ascii_islower(static_cast<unsigned char>(c[0])) &&
        CharacterValue(absl::ascii_toupper(static_cast<unsigned char>(c[0]))) >= 0) {
      std::string upper = absl::AsciiStrToUpper(code);
      if (Check(upper).empty()) {
        return absl::StrCat("must be upper case (", Quote(upper), ")");
      }
      return absl::StrCat("character ", i + 1, " ", Quote(c), " must be upper case");
    }
    return absl::StrCat("character ", i + 1, " ", Quote(c), " is not allowed (", kAlphabetDescription,
                        ")");
  }
  // From here on every character is a single byte of the alphabet.

  const Authority* authority = FindAuthority(code[0]);
  if (authority == nullptr) {
    return absl::StrCat("registration authority (character 1) ", Quote(code[0]),
                        " is not one of 1-9, A, N, Y");
  }
  if (authority->entity_types.find(code[1]) == absl::string_view::npos) {
    return absl::StrCat("entity type (character 2) ", Quote(code[1]), " is not allowed for registration authority ",
                        Quote(code[0]), " (allowed: ", AllowedList(authority->entity_types), ")");
  }

  std::string division_error = CheckDivision(code.substr(2, 6));
  if (!division_error.empty()) {
    return division_error;
  }

  char expected = UsccCheckCharacter(code.substr(0, kCodeLength - 1));
  if (code[kCodeLength - 1] != expected) {
    return absl::StrCat("check character is ", Quote(code[kCodeLength - 1]), ", expected ", Quote(expected));
  }
  return "";
}

}  // namespace

char UsccCheckCharacter(absl::string_view first17) {
  if (first17.size() != kWeights.size()) {
    return '\0';
  }
  int sum = 0;
  for (size_t i = 0; i < kWeights.size(); ++i) {
    int value = CharacterValue(first17[i]);
    if (value < 0) {
      return '\0';
    }
    sum += value * kWeights[i];
  }
  constexpr int kModulus = 31;
  return kUsccAlphabet[(kModulus - sum % kModulus) % kModulus];
}

absl::Status ValidateUscc(absl::string_view code, absl::string_view field) {
  std::string error = Check(code);
  if (error.empty()) {
    return absl::OkStatus();
  }
  return InvalidField(field, error);
}

}  // namespace clustergov::refdata
