#include "common/refdata/uscc.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clustergov::refdata {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

// Published codes of well-known companies, and one sample whose check character was computed
// independently (Python, GB 32100-2015 weights) rather than with the function under test.
constexpr absl::string_view kAlibabaChina = "91330100716105852F";  // 阿里巴巴（中国）有限公司
constexpr absl::string_view kHuawei = "914403001922038216";        // 华为技术有限公司
constexpr absl::string_view kTencent = "9144030071526726XG";       // 深圳市腾讯计算机系统有限公司
constexpr absl::string_view kXiaomi = "91110108551385082Q";        // 北京小米科技有限责任公司
constexpr absl::string_view kIndependentSample = "91150100CG0000001G";

// 17 characters + the computed check character.
std::string WithCheck(absl::string_view first17) {
  char check = UsccCheckCharacter(first17);
  EXPECT_NE(check, '\0') << first17;
  return absl::StrCat(first17, std::string(1, check));
}

// "91" + division + a fixed organization part, with the correct check character.
std::string EnterpriseIn(absl::string_view division) {
  return WithCheck(absl::StrCat("91", division, "CG0000001"));
}

// The single violation's description, or a marker when there is not exactly one.
std::string Description(const absl::Status& status) {
  std::vector<FieldViolation> violations = GetFieldViolations(status);
  if (violations.size() != 1) {
    return absl::StrCat("<", violations.size(), " violations: ", status.ToString(), ">");
  }
  return violations[0].description;
}

std::string Error(absl::string_view code) {
  absl::Status status = ValidateUscc(code);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << code;
  return Description(status);
}

// ------------------------------------------------------------------ check character

TEST(UsccCheckCharacterTest, MatchesPublishedCodes) {
  for (absl::string_view code : {kAlibabaChina, kHuawei, kTencent, kXiaomi, kIndependentSample}) {
    EXPECT_EQ(UsccCheckCharacter(code.substr(0, 17)), code[17]) << code;
    EXPECT_TRUE(ValidateUscc(code).ok()) << code << ": " << ValidateUscc(code);
  }
}

TEST(UsccCheckCharacterTest, SumDivisibleBy31GivesZero) {
  // 9·1 + 1·3 + 1·9 + 5·27 + 1·26 + M(21)·20 + A(10)·29 + N(22)·13 = 1178 = 38·31.
  EXPECT_EQ(UsccCheckCharacter("91150100MA0N00000"), '0');
  EXPECT_TRUE(ValidateUscc("91150100MA0N000000").ok());
}

TEST(UsccCheckCharacterTest, RejectsInputsOutsideTheAlphabetOrOfTheWrongLength) {
  EXPECT_EQ(UsccCheckCharacter(""), '\0');
  EXPECT_EQ(UsccCheckCharacter("9144030019220382"), '\0');    // 16
  EXPECT_EQ(UsccCheckCharacter(kHuawei), '\0');               // 18
  EXPECT_EQ(UsccCheckCharacter("9144030071526726x"), '\0');   // lower case
  EXPECT_EQ(UsccCheckCharacter("9144030071526726I"), '\0');   // not in the alphabet
  EXPECT_EQ(UsccCheckCharacter(absl::string_view("9144030071526726\0", 17)), '\0');
}

TEST(UsccCheckCharacterTest, ConstructedCodesValidate) {
  for (absl::string_view first17 : {"91150100CG0000002", "12150000400000624", "Y1150000ABCDEFGHJ",
                                    "N2152921KLMNPQRTU", "51110108WXY012345"}) {
    std::string code = WithCheck(first17);
    EXPECT_TRUE(ValidateUscc(code).ok()) << code << ": " << ValidateUscc(code);
  }
}

// ------------------------------------------------------------------ length

TEST(ValidateUsccTest, Length) {
  EXPECT_EQ(Error(kHuawei.substr(0, 17)), "must be 18 characters, got 17");
  EXPECT_EQ(Error(absl::StrCat(kHuawei, "0")), "must be 18 characters, got 19");
  EXPECT_EQ(Error(""), "is empty; must be 18 characters");
}

TEST(ValidateUsccTest, LengthCountsCharactersNotBytes) {
  // Full-width digits (UTF-8, 3 bytes each) typed by mistake.
  std::string code = absl::StrCat("９１", kHuawei.substr(2));
  EXPECT_EQ(Error(code), "character 1 \"９\" is not allowed (the code is written in 0-9 and A-Z without I, O, S, V, Z)");
}

// ------------------------------------------------------------------ alphabet

TEST(ValidateUsccTest, LowerCaseOfAValidCode) {
  EXPECT_EQ(Error("9144030071526726xg"), "must be upper case (\"9144030071526726XG\")");
  EXPECT_EQ(Error("91150100cg0000001g"), "must be upper case (\"91150100CG0000001G\")");
}

TEST(ValidateUsccTest, LowerCaseOfAnInvalidCode) {
  // Upper-cased, the check character would still be wrong: name the first lower-case character.
  EXPECT_EQ(Error("9144030071526726xa"), "character 17 \"x\" must be upper case");
}

TEST(ValidateUsccTest, LettersOutsideTheAlphabet) {
  for (char c : std::string("IOZSV")) {
    std::string code = absl::StrCat("91150100", std::string(1, c), "G0000001G");
    EXPECT_EQ(Error(code), absl::StrCat("character 9 \"", std::string(1, c),
                                        "\" is not allowed (the code is written in 0-9 and A-Z without I, O, S, V, Z)"));
  }
  // Their lower-case forms are not "upper case" problems: upper-cased they are still not allowed.
  EXPECT_THAT(Error("91150100oG0000001G"), HasSubstr("character 9 \"o\" is not allowed"));
}

TEST(ValidateUsccTest, OtherCharacters) {
  EXPECT_THAT(Error("91150100-G0000001G"), HasSubstr("character 9 \"-\" is not allowed"));
  EXPECT_THAT(Error("91150100 G0000001G"), HasSubstr("character 9 \" \" is not allowed"));
  EXPECT_THAT(Error(absl::string_view("91150100\nG0000001G")), HasSubstr("character 9 \"\\n\" is not allowed"));
  EXPECT_THAT(Error(absl::string_view("91150100\0G0000001G", 18)), HasSubstr("character 9 \"\\x00\" is not allowed"));
  EXPECT_THAT(Error("91150100\xffG0000001G"), HasSubstr("character 9 \"\\xff\" is not allowed"));
}

// Byte sequences that look like UTF-8 but are not (a UTF-16 surrogate, an overlong form, beyond
// U+10FFFF) are shown byte by byte, escaped, so the message itself stays valid UTF-8 (found by
// fuzzing: the surrogate came back raw and broke the BadRequest's serialization).
TEST(ValidateUsccTest, IllFormedUtf8IsShownEscaped) {
  for (const char* bad : {"\xed\xbd\x89", "\xe0\x80\xb1", "\xf4\x90\x80\x80", "\xf0\x80\x80\xb1"}) {
    // Each byte of an ill-formed sequence counts as one character: 18 in all.
    const std::string bytes(bad);
    std::string code = absl::StrCat(bytes, absl::string_view("91150100MA0N2X6T8Q").substr(bytes.size()));
    std::string error = Error(code);
    EXPECT_THAT(error, HasSubstr("character 1 \"\\x")) << error;
    for (char c : error) EXPECT_LT(static_cast<unsigned char>(c), 0x80u) << error;
  }
}

// ------------------------------------------------------------------ authority and entity type

TEST(ValidateUsccTest, RegistrationAuthority) {
  for (char c : std::string("0BCDEFGHJKLMPQRTUWX")) {
    std::string code = WithCheck(absl::StrCat(std::string(1, c), "1150100CG0000001"));
    EXPECT_EQ(Error(code), absl::StrCat("registration authority (character 1) \"", std::string(1, c),
                                        "\" is not one of 1-9, A, N, Y"));
  }
}

TEST(ValidateUsccTest, EntityTypeMustBeAllowedForTheAuthority) {
  // GB 32100-2015 appendix A, written out independently of the implementation.
  const std::vector<std::pair<char, std::string>> allowed = {
      {'1', "1239"}, {'2', "19"},  {'3', "123459"}, {'4', "19"}, {'5', "1239"}, {'6', "129"},
      {'7', "129"},  {'8', "19"},  {'9', "123"},    {'A', "19"}, {'N', "1239"}, {'Y', "1"},
  };
  for (const auto& [authority, types] : allowed) {
    for (char type : kUsccAlphabet) {
      std::string code = WithCheck(absl::StrCat(std::string(1, authority), std::string(1, type), "150100CG0000001"));
      absl::Status status = ValidateUscc(code);
      if (types.find(type) != std::string::npos) {
        EXPECT_TRUE(status.ok()) << code << ": " << status;
      } else {
        EXPECT_THAT(Description(status), HasSubstr(absl::StrCat("entity type (character 2) \"", std::string(1, type),
                                                                "\" is not allowed for registration authority \"",
                                                                std::string(1, authority), "\"")))
            << code;
      }
    }
  }
}

TEST(ValidateUsccTest, EntityTypeMessageListsTheAllowedTypes) {
  EXPECT_EQ(Error(WithCheck("94150100CG0000001")),
            "entity type (character 2) \"4\" is not allowed for registration authority \"9\" (allowed: 1, 2, 3)");
  EXPECT_EQ(Error(WithCheck("Y9150100CG0000001")),
            "entity type (character 2) \"9\" is not allowed for registration authority \"Y\" (allowed: 1)");
  EXPECT_EQ(Error(WithCheck("2A150100CG0000001")),
            "entity type (character 2) \"A\" is not allowed for registration authority \"2\" (allowed: 1, 9)");
}

TEST(ValidateUsccTest, FarmersCooperativesAndIndividualBusinessesAreMarketEntities) {
  // 工商 (9) registers 1 企业, 2 个体工商户 and 3 农民专业合作社: "92…" and "93…" are valid prefixes.
  EXPECT_TRUE(ValidateUscc(WithCheck("92150100CG0000001")).ok());
  EXPECT_TRUE(ValidateUscc(WithCheck("93150100CG0000001")).ok());
}

// ------------------------------------------------------------------ administrative division

TEST(ValidateUsccTest, DivisionMustBeDigits) {
  EXPECT_EQ(Error(WithCheck("9115A100CG0000001")),
            "administrative division code (characters 3-8) \"15A100\" must be 6 digits");
  EXPECT_EQ(Error(WithCheck("9115010YCG0000001")),
            "administrative division code (characters 3-8) \"15010Y\" must be 6 digits");
}

TEST(ValidateUsccTest, DivisionMustBeInAProvince) {
  EXPECT_EQ(Error(EnterpriseIn("990000")),
            "administrative division code (characters 3-8) \"990000\" does not start with a province-level code "
            "(\"99\" is not one)");
  for (absl::string_view division : {"000000", "100000", "160000", "240000", "470000", "550000", "660000", "720000",
                                     "830000", "910000"}) {
    EXPECT_THAT(Error(EnterpriseIn(division)), HasSubstr("does not start with a province-level code")) << division;
  }
}

TEST(ValidateUsccTest, EveryProvinceLevelCodeIsAccepted) {
  for (absl::string_view province : {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34",
                                     "35", "36", "37", "41", "42", "43", "44", "45", "46", "50", "51", "52",
                                     "53", "54", "61", "62", "63", "64", "65", "71", "81", "82"}) {
    std::string code = EnterpriseIn(absl::StrCat(province, "0000"));
    EXPECT_TRUE(ValidateUscc(code).ok()) << code << ": " << ValidateUscc(code);
  }
}

TEST(ValidateUsccTest, OtherProvincesAreNotCheckedBelowProvinceLevel) {
  EXPECT_TRUE(ValidateUscc(EnterpriseIn("110108")).ok());  // 北京市海淀区
  EXPECT_TRUE(ValidateUscc(EnterpriseIn("441000")).ok());
}

TEST(ValidateUsccTest, InnerMongoliaDivisionMustBeInALeague) {
  EXPECT_EQ(Error(EnterpriseIn("151000")),
            "administrative division code (characters 3-8) \"151000\" is not in a league or city of Inner Mongolia "
            "(\"151000\" is not a league-level region)");
  EXPECT_THAT(Error(EnterpriseIn("152300")), HasSubstr("(\"152300\" is not a league-level region)"));
  EXPECT_THAT(Error(EnterpriseIn("159901")), HasSubstr("(\"159900\" is not a league-level region)"));
}

TEST(ValidateUsccTest, InnerMongoliaLeaguesAndRegionLevel) {
  for (absl::string_view division : {"150000",  // 内蒙古自治区 (region level)
                                     "150001",  // prefix 1500 counts as region level
                                     "150100", "150102", "150200", "150300", "150400", "150500", "150600", "150700",
                                     "150800", "150900", "152200", "152500", "152921"}) {
    std::string code = EnterpriseIn(division);
    EXPECT_TRUE(ValidateUscc(code).ok()) << code << ": " << ValidateUscc(code);
  }
}

// ------------------------------------------------------------------ check character

TEST(ValidateUsccTest, WrongCheckCharacterNamesTheExpectedOne) {
  EXPECT_EQ(Error("91440300192203821A"), "check character is \"A\", expected \"6\"");
  EXPECT_EQ(Error("91150100CG00000010"), "check character is \"0\", expected \"G\"");
  // Every wrong character in the last position is reported with the right expectation.
  for (char c : kUsccAlphabet) {
    if (c == kTencent[17]) {
      continue;
    }
    std::string code = absl::StrCat(kTencent.substr(0, 17), std::string(1, c));
    EXPECT_THAT(Error(code), HasSubstr("expected \"G\"")) << code;
  }
}

// ------------------------------------------------------------------ status shape

TEST(ValidateUsccTest, OneViolationOnTheGivenField) {
  absl::Status status = ValidateUscc("91440300192203821A", "lead_enterprises[2].enterprise");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  std::vector<FieldViolation> violations = GetFieldViolations(status);
  ASSERT_THAT(violations, SizeIs(1));
  EXPECT_EQ(violations[0].field, "lead_enterprises[2].enterprise");
  EXPECT_EQ(violations[0].description, "check character is \"A\", expected \"6\"");
  EXPECT_THAT(status.message(), HasSubstr("lead_enterprises[2].enterprise"));
}

TEST(ValidateUsccTest, DefaultFieldName) {
  std::vector<FieldViolation> violations = GetFieldViolations(ValidateUscc("123"));
  ASSERT_THAT(violations, SizeIs(1));
  EXPECT_EQ(violations[0].field, "uscc");
}

TEST(ValidateUsccTest, ReportsOnlyTheFirstRuleBroken) {
  // Bad authority, bad entity type, unknown province and a wrong check character at once.
  EXPECT_EQ(Error("B9990000CG00000010"), "registration authority (character 1) \"B\" is not one of 1-9, A, N, Y");
  // Bad entity type and unknown province.
  EXPECT_THAT(Error("94990000CG00000010"), HasSubstr("entity type (character 2)"));
  // Unknown province and wrong check character.
  EXPECT_THAT(Error("91990000CG00000010"), HasSubstr("province-level"));
}

TEST(ValidateUsccTest, ValidCodeIsOk) {
  EXPECT_TRUE(ValidateUscc(kIndependentSample).ok());
  EXPECT_TRUE(ValidateUscc(kIndependentSample, "enterprise").ok());
}

}  // namespace
}  // namespace clustergov::refdata
