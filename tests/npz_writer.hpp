// Test helper: writes .npy images and .npz archives (members stored or deflated), so the reader is
// tested on files whose every byte the test controls.
#pragma once
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace adaqp::testing {

// .npy v1.0 image of raw little-endian data with the given descr ("<f4", "|b1", ...) and shape.
inline std::vector<std::uint8_t> npy_bytes(const std::string& descr, const std::vector<std::int64_t>& shape,
                                           const void* data, std::size_t bytes, bool fortran = false) {
  std::string dims;
  for (auto d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);  // (3,) keeps its comma, (3, 4) does not
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  // Sized once and filled with memcpy (g++ 12 at -O3 misreads a range insert from a string as an overflow).
  const std::uint8_t magic[10] = {
      0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, std::uint8_t(header.size() & 0xff), std::uint8_t(header.size() >> 8)};
  std::vector<std::uint8_t> out(sizeof magic + header.size() + bytes);
  std::memcpy(out.data(), magic, sizeof magic);
  std::memcpy(out.data() + sizeof magic, header.data(), header.size());
  if (bytes) std::memcpy(out.data() + sizeof magic + header.size(), data, bytes);
  return out;
}

template <class T>
std::vector<std::uint8_t> npy_of(const std::string& descr, const std::vector<std::int64_t>& shape,
                                 const std::vector<T>& v, bool fortran = false) {
  return npy_bytes(descr, shape, v.data(), v.size() * sizeof(T), fortran);
}

struct Member {
  std::string name;  // without .npy
  std::vector<std::uint8_t> bytes;
  bool deflate = false;
};

inline void put16(std::vector<std::uint8_t>& o, std::uint32_t v) {
  o.push_back(std::uint8_t(v));
  o.push_back(std::uint8_t(v >> 8));
}
inline void put32(std::vector<std::uint8_t>& o, std::uint32_t v) {
  put16(o, v & 0xffff);
  put16(o, v >> 16);
}

inline std::vector<std::uint8_t> deflate_raw(const std::vector<std::uint8_t>& in) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::vector<std::uint8_t> out(deflateBound(&zs, uLong(in.size())));
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = uInt(in.size());
  zs.next_out = out.data();
  zs.avail_out = uInt(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

inline void write_npz(const std::string& path, const std::vector<Member>& members) {
  std::vector<std::uint8_t> file, central;
  for (const auto& m : members) {
    const std::string name = m.name + ".npy";
    const auto payload = m.deflate ? deflate_raw(m.bytes) : m.bytes;
    const std::uint32_t crc = std::uint32_t(crc32(0L, m.bytes.data(), uInt(m.bytes.size())));
    const std::uint32_t offset = std::uint32_t(file.size());
    const std::uint16_t method = m.deflate ? 8 : 0;
    put32(file, 0x04034b50);
    put16(file, 20);
    put16(file, 0);
    put16(file, method);
    put16(file, 0);
    put16(file, 0);
    put32(file, crc);
    put32(file, std::uint32_t(payload.size()));
    put32(file, std::uint32_t(m.bytes.size()));
    put16(file, std::uint32_t(name.size()));
    put16(file, 0);
    file.insert(file.end(), name.begin(), name.end());
    file.insert(file.end(), payload.begin(), payload.end());
    put32(central, 0x02014b50);
    put16(central, 20);
    put16(central, 20);
    put16(central, 0);
    put16(central, method);
    put16(central, 0);
    put16(central, 0);
    put32(central, crc);
    put32(central, std::uint32_t(payload.size()));
    put32(central, std::uint32_t(m.bytes.size()));
    put16(central, std::uint32_t(name.size()));
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put16(central, 0);
    put32(central, 0);
    put32(central, offset);
    central.insert(central.end(), name.begin(), name.end());
  }
  const std::uint32_t cd_offset = std::uint32_t(file.size());
  file.insert(file.end(), central.begin(), central.end());
  put32(file, 0x06054b50);
  put16(file, 0);
  put16(file, 0);
  put16(file, std::uint32_t(members.size()));
  put16(file, std::uint32_t(members.size()));
  put32(file, std::uint32_t(central.size()));
  put32(file, cd_offset);
  put16(file, 0);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(file.data()), std::streamsize(file.size()));
}

// A fresh temporary directory for one test (removed by the caller if wanted).
inline std::string temp_dir(const std::string& tag) {
  std::string tmpl = "/tmp/adaqp-test-" + tag + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  const char* d = mkdtemp(buf.data());
  return d ? std::string(d) : std::string("/tmp");
}

}  // namespace adaqp::testing
