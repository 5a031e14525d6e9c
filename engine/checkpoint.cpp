#include "engine/checkpoint.hpp"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/atomic_file.hpp"
#include "base/error.hpp"

namespace adaqp::engine {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[] = "ADAQPCKPT1\n";
constexpr std::size_t kMagicBytes = sizeof(kMagic) - 1;

std::string epoch_folder(std::int64_t epoch) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "epoch-%08lld", static_cast<long long>(epoch));
  return buf;
}

// Section bytes and their header entries, in write order.
struct Writer {
  nlohmann::json sections = nlohmann::json::array();
  std::string bytes;
  template <class T>
  void add(const std::string& name, const std::vector<T>& v, nlohmann::json extra = nlohmann::json::object()) {
    extra["name"] = name;
    extra["bytes"] = v.size() * sizeof(T);
    sections.push_back(extra);
    if (!v.empty()) bytes.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
};

// The whole file or nothing (base/atomic_file.hpp); errors name the option they come from.
void write_atomically(const fs::path& path, const std::string& data) {
  try {
    write_file_atomically(path.string(), data);
  } catch (const Error& e) {
    throw Error(std::string("--checkpoint: ") + e.what());
  }
}

std::string diff_key(const nlohmann::json& saved, const nlohmann::json& mine) {
  for (const auto& [k, v] : mine.items()) {
    if (!saved.contains(k)) return "'" + k + "' (missing there)";
    if (saved[k] != v) {
      if (v.is_object() && saved[k].is_object()) return diff_key(saved[k], v);
      return "'" + k + "': " + saved[k].dump() + " there, " + v.dump() + " here";
    }
  }
  for (const auto& [k, v] : saved.items())
    if (!mine.contains(k)) return "'" + k + "' (missing here)";
  return "?";
}

}  // namespace

void write_checkpoint(const std::string& dir, const Checkpoint& ck, Communicator& comm) {
  const fs::path folder = fs::path(dir) / epoch_folder(ck.epoch);
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw Error("--checkpoint " + dir + ": cannot create " + folder.string() + ": " + ec.message());
  Writer w;
  for (std::size_t i = 0; i < ck.params.size(); ++i) w.add("param" + std::to_string(i), ck.params[i]);
  for (std::size_t i = 0; i < ck.adam.m.size(); ++i) {
    w.add("adam.m" + std::to_string(i), ck.adam.m[i]);
    w.add("adam.v" + std::to_string(i), ck.adam.v[i]);
  }
  if (ck.has_assignment) w.add("assignment", ck.assignment);
  w.add("link_costs", ck.link_costs);
  for (const auto& [name, m] : ck.stores) w.add("store." + name, m.data, {{"rows", m.rows}, {"cols", m.cols}});
  w.add("records", std::vector<char>(ck.records.begin(), ck.records.end()));
  const nlohmann::json header = {{"identity", ck.identity},
                                 {"rank", ck.rank},
                                 {"ranks", ck.ranks},
                                 {"epoch", ck.epoch},
                                 {"adam_step", ck.adam.step},
                                 {"params", ck.params.size()},
                                 {"has_assignment", ck.has_assignment},
                                 {"sections", w.sections}};
  const std::string text = header.dump();
  std::string data(kMagic, kMagicBytes);
  const std::uint64_t len = text.size();
  for (int b = 0; b < 8; ++b) data.push_back(char((len >> (8 * b)) & 0xff));
  data += text;
  data += w.bytes;
  const std::uint32_t crc =
      std::uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
  for (int b = 0; b < 4; ++b) data.push_back(char((crc >> (8 * b)) & 0xff));
  write_atomically(folder / ("rank-" + std::to_string(ck.rank) + ".ckpt"), data);
  double ok = 0;
  comm.allreduce_max(&ok, 1);  // every rank's file is in place
  if (comm.rank() != 0) return;
  write_atomically(fs::path(dir) / "latest", epoch_folder(ck.epoch) + "\n");
  for (const auto& e : fs::directory_iterator(dir, ec))  // older complete sets and stray temporaries
    if (e.is_directory() && e.path().filename().string().rfind("epoch-", 0) == 0 &&
        e.path().filename() != epoch_folder(ck.epoch))
      fs::remove_all(e.path(), ec);
}

Checkpoint read_checkpoint(const std::string& dir, int rank, int ranks, const nlohmann::json& identity) {
  std::string latest;
  {
    std::ifstream in(fs::path(dir) / "latest");
    if (!in || !std::getline(in, latest) || latest.rfind("epoch-", 0) != 0)
      throw Error("--resume: " + (fs::path(dir) / "latest").string() + " is missing or unreadable (no checkpoint)");
  }
  const fs::path file = fs::path(dir) / latest / ("rank-" + std::to_string(rank) + ".ckpt");
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw Error("--resume: " + file.string() + " is missing (was the run started with " + std::to_string(ranks) +
                " ranks?)");
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string where = "--resume: " + file.string();
  if (data.size() < kMagicBytes + 12 || data.compare(0, kMagicBytes, kMagic) != 0)
    throw Error(where + ": not an adaqp checkpoint or truncated");
  std::uint32_t crc = 0;
  for (int b = 0; b < 4; ++b) crc |= std::uint32_t(std::uint8_t(data[data.size() - 4 + std::size_t(b)])) << (8 * b);
  const std::uint32_t actual =
      std::uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size() - 4)));
  if (crc != actual) throw Error(where + ": corrupt (CRC mismatch)");
  std::uint64_t len = 0;
  for (int b = 0; b < 8; ++b) len |= std::uint64_t(std::uint8_t(data[kMagicBytes + std::size_t(b)])) << (8 * b);
  std::size_t at = kMagicBytes + 8;
  if (at + len > data.size() - 4) throw Error(where + ": truncated header");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(data.substr(at, len));
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": unreadable header");
  }
  at += len;
  Checkpoint ck;
  ck.identity = h.at("identity");
  ck.rank = h.at("rank");
  ck.ranks = h.at("ranks");
  ck.epoch = h.at("epoch");
  if (ck.ranks != ranks)
    throw Error(where + ": written by a run of " + std::to_string(ck.ranks) + " ranks, this one has " +
                std::to_string(ranks));
  if (ck.rank != rank) throw Error(where + ": holds rank " + std::to_string(ck.rank) + "'s state");
  if (ck.identity != identity)
    throw Error(where + ": written by another run or configuration (" + diff_key(ck.identity, identity) + ")");
  ck.adam.step = h.at("adam_step");
  ck.has_assignment = h.at("has_assignment");
  const std::size_t n_params = h.at("params");
  for (const auto& s : h.at("sections")) {
    const std::string name = s.at("name");
    const std::size_t bytes = s.at("bytes");
    if (at + bytes > data.size() - 4) throw Error(where + ": truncated section " + name);
    const char* p = data.data() + at;
    at += bytes;
    auto take = [&](auto& v) {
      using T = typename std::decay_t<decltype(v)>::value_type;
      v.resize(bytes / sizeof(T));
      if (bytes > 0) std::memcpy(v.data(), p, bytes);  // an empty vector's data() may be null
    };
    if (name.rfind("param", 0) == 0) {
      ck.params.emplace_back();
      take(ck.params.back());
    } else if (name.rfind("adam.m", 0) == 0) {
      ck.adam.m.emplace_back();
      take(ck.adam.m.back());
    } else if (name.rfind("adam.v", 0) == 0) {
      ck.adam.v.emplace_back();
      take(ck.adam.v.back());
    } else if (name == "assignment") {
      take(ck.assignment);
    } else if (name == "link_costs") {
      take(ck.link_costs);
    } else if (name.rfind("store.", 0) == 0) {
      Matrix<float> m;
      m.rows = s.at("rows");
      m.cols = s.at("cols");
      take(m.data);
      if (std::int64_t(m.data.size()) != m.rows * m.cols) throw Error(where + ": store " + name + " has a bad size");
      ck.stores.emplace(name.substr(6), std::move(m));
    } else if (name == "records") {
      ck.records.assign(p, bytes);
    } else {
      throw Error(where + ": unknown section " + name);
    }
  }
  if (ck.params.size() != n_params || ck.adam.m.size() != n_params || ck.adam.v.size() != n_params)
    throw Error(where + ": holds " + std::to_string(ck.params.size()) + " parameters, header says " +
                std::to_string(n_params));
  return ck;
}

}  // namespace adaqp::engine
