// CSV output of the results folder (results.csv, paired.csv): RFC 4180 quoting of one field.
#pragma once
#include <string>

namespace adaqp::experiments {

inline std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\n") == std::string::npos) return v;
  std::string q = "\"";
  for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace adaqp::experiments
