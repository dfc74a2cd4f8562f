#include "services/gateway/json_printer.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/stubs/strutil.h"
#include "google/protobuf/util/field_mask_util.h"
#include "google/protobuf/util/time_util.h"
#include "services/gateway/json.h"

namespace clustergov::gateway {
namespace {

namespace pb = google::protobuf;
using pb::FieldDescriptor;

constexpr int64_t kTimestampMinSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr int64_t kTimestampMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z
constexpr int64_t kDurationMaxSeconds = 315576000000;

bool PrintMessage(const pb::Message& m, bool emit_defaults, std::string* out);

void AppendDigits(int64_t value, int width, std::string* out) {
  char buf[20];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out->append(buf, static_cast<size_t>(width));
}

// RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as protobuf prints it; no printf (TimeUtil
// formats through it and shows up in profiles). Civil date from days: H. Hinnant's algorithm.
void AppendTimestamp(int64_t seconds, int32_t nanos, std::string* out) {
  int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
  int64_t rem = seconds - days * 86400;
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  out->push_back('"');
  AppendDigits(year, 4, out);
  out->push_back('-');
  AppendDigits(month, 2, out);
  out->push_back('-');
  AppendDigits(day, 2, out);
  out->push_back('T');
  AppendDigits(rem / 3600, 2, out);
  out->push_back(':');
  AppendDigits(rem / 60 % 60, 2, out);
  out->push_back(':');
  AppendDigits(rem % 60, 2, out);
  if (nanos != 0) {
    out->push_back('.');
    if (nanos % 1000000 == 0) {
      AppendDigits(nanos / 1000000, 3, out);
    } else if (nanos % 1000 == 0) {
      AppendDigits(nanos / 1000, 6, out);
    } else {
      AppendDigits(nanos, 9, out);
    }
  }
  out->append("Z\"");
}

void PrintDouble(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    out->append(pb::SimpleDtoa(v));
  }
}

void PrintFloat(float v, std::string* out) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    out->append(pb::SimpleFtoa(v));
  }
}

// One value of `f` (`index` < 0: the singular field).
bool PrintValue(const pb::Message& m, const FieldDescriptor* f, int index, bool emit_defaults, std::string* out) {
  const pb::Reflection* r = m.GetReflection();
  bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(out, rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      return true;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(out, rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      return true;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(out, "\"", rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f), "\"");
      return true;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(out, "\"", rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f), "\"");
      return true;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      PrintDouble(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f), out);
      return true;
    case FieldDescriptor::CPPTYPE_FLOAT:
      PrintFloat(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f), out);
      return true;
    case FieldDescriptor::CPPTYPE_BOOL:
      out->append((rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false");
      return true;
    case FieldDescriptor::CPPTYPE_ENUM: {
      int number = rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f);
      if (f->enum_type()->full_name() == "google.protobuf.NullValue") {
        out->append("null");
        return true;
      }
      const pb::EnumValueDescriptor* v = f->enum_type()->FindValueByNumber(number);
      if (v != nullptr) {
        AppendJsonString(out, v->name());
      } else {
        absl::StrAppend(out, number);
      }
      return true;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s =
          rep ? r->GetRepeatedStringReference(m, f, index, &scratch) : r->GetStringReference(m, f, &scratch);
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        AppendJsonString(out, absl::Base64Escape(s));
      } else {
        AppendJsonString(out, s);
      }
      return true;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return PrintMessage(rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f), emit_defaults, out);
  }
  return false;
}

// A map key as the JSON object key (always a string).
bool PrintMapKey(const pb::Message& entry, const FieldDescriptor* key, std::string* out) {
  const pb::Reflection* r = entry.GetReflection();
  switch (key->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      AppendJsonString(out, r->GetString(entry, key));
      return true;
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(out, "\"", r->GetInt32(entry, key), "\"");
      return true;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(out, "\"", r->GetUInt32(entry, key), "\"");
      return true;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(out, "\"", r->GetInt64(entry, key), "\"");
      return true;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(out, "\"", r->GetUInt64(entry, key), "\"");
      return true;
    case FieldDescriptor::CPPTYPE_BOOL:
      out->append(r->GetBool(entry, key) ? "\"true\"" : "\"false\"");
      return true;
    default:
      return false;
  }
}

// Well-known types with a special JSON form. *handled is false for ordinary messages.
bool PrintWellKnown(const pb::Message& m, bool* handled, std::string* out) {
  const pb::Descriptor* d = m.GetDescriptor();
  *handled = false;
  if (d->file()->package() != "google.protobuf") return true;
  const std::string& name = d->name();
  const pb::Reflection* r = m.GetReflection();
  *handled = true;
  if (name == "Timestamp" || name == "Duration") {
    const FieldDescriptor* seconds = d->FindFieldByNumber(1);
    const FieldDescriptor* nanos = d->FindFieldByNumber(2);
    if (seconds == nullptr || nanos == nullptr) return false;
    int64_t s = r->GetInt64(m, seconds);
    int32_t n = r->GetInt32(m, nanos);
    if (name == "Timestamp") {
      if (s < kTimestampMinSeconds || s > kTimestampMaxSeconds || n < 0 || n > 999999999) return false;
      AppendTimestamp(s, n, out);
    } else {
      if (s < -kDurationMaxSeconds || s > kDurationMaxSeconds || n < -999999999 || n > 999999999 || (s > 0 && n < 0) ||
          (s < 0 && n > 0)) {
        return false;
      }
      pb::Duration du;
      du.set_seconds(s);
      du.set_nanos(n);
      absl::StrAppend(out, "\"", pb::util::TimeUtil::ToString(du), "\"");
    }
    return true;
  }
  if (name == "FieldMask") {
    pb::FieldMask mask;
    const FieldDescriptor* paths = d->FindFieldByNumber(1);
    if (paths == nullptr) return false;
    for (int i = 0; i < r->FieldSize(m, paths); ++i) mask.add_paths(r->GetRepeatedString(m, paths, i));
    std::string json;
    if (!pb::util::FieldMaskUtil::ToJsonString(mask, &json)) return false;
    AppendJsonString(out, json);
    return true;
  }
  if (absl::EndsWith(name, "Value") && name != "Value" && name != "ListValue" && d->field_count() == 1) {
    return PrintValue(m, d->field(0), -1, false, out);  // DoubleValue ... BytesValue: the bare value
  }
  if (name == "Empty") {
    out->append("{}");
    return true;
  }
  // Any, Struct, Value, ListValue: the reference printer's job.
  return false;
}

bool PrintMessage(const pb::Message& m, bool emit_defaults, std::string* out) {
  bool handled = false;
  bool ok = PrintWellKnown(m, &handled, out);
  if (handled || !ok) return ok;
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  out->push_back('{');
  bool first = true;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) {
      if (r->FieldSize(m, f) == 0 && !emit_defaults) continue;
    } else if (f->has_presence()) {
      if (!r->HasField(m, f)) continue;  // unset messages, oneof members and optionals
    } else if (!emit_defaults && !r->HasField(m, f)) {
      continue;  // a proto3 scalar at its default
    }
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, f->json_name());
    out->push_back(':');
    if (f->is_map()) {
      const FieldDescriptor* key = f->message_type()->map_key();
      const FieldDescriptor* value = f->message_type()->map_value();
      out->push_back('{');
      for (int k = 0; k < r->FieldSize(m, f); ++k) {
        const pb::Message& entry = r->GetRepeatedMessage(m, f, k);
        if (k > 0) out->push_back(',');
        if (!PrintMapKey(entry, key, out)) return false;
        out->push_back(':');
        if (!PrintValue(entry, value, -1, emit_defaults, out)) return false;
      }
      out->push_back('}');
    } else if (f->is_repeated()) {
      out->push_back('[');
      for (int k = 0; k < r->FieldSize(m, f); ++k) {
        if (k > 0) out->push_back(',');
        if (!PrintValue(m, f, k, emit_defaults, out)) return false;
      }
      out->push_back(']');
    } else if (!PrintValue(m, f, -1, emit_defaults, out)) {
      return false;
    }
  }
  out->push_back('}');
  return true;
}

}  // namespace

bool PrintJson(const google::protobuf::Message& message, bool emit_defaults, std::string* out) {
  return PrintMessage(message, emit_defaults, out);
}

}  // namespace clustergov::gateway
