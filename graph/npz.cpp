#include "graph/npz.hpp"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "base/error.hpp"

namespace adaqp::graph {
namespace {

std::uint16_t le16(const std::uint8_t* p) {
  return std::uint16_t(p[0] | (p[1] << 8));
}
std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[3]) << 24);
}
std::uint64_t le64(const std::uint8_t* p) {
  return le32(p) | (std::uint64_t(le32(p + 4)) << 32);
}

std::vector<std::uint8_t> read_range(const std::string& path, std::uint64_t offset, std::uint64_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file");
  in.seekg(std::streamoff(offset));
  std::vector<std::uint8_t> buf(n);
  in.read(reinterpret_cast<char*>(buf.data()), std::streamsize(n));
  if (std::uint64_t(in.gcount()) != n) throw Error(path + ": file is truncated");
  return buf;
}

}  // namespace

std::int64_t NpyArray::count() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

void NpyArray::expect_ndim(int ndim) const {
  if (int(shape.size()) != ndim)
    throw Error(where() + ": expected " + std::to_string(ndim) + " dimensions, found " + std::to_string(shape.size()));
}

template <class Out>
static std::vector<Out> convert(const NpyArray& a) {
  const std::int64_t n = a.count();
  std::vector<Out> out(n);
  const std::uint8_t* p = a.data.data();
  for (std::int64_t i = 0; i < n; ++i, p += a.item_bytes) {
    switch (a.kind) {
      case 'f':
        if (a.item_bytes == 4) {
          float v;
          std::memcpy(&v, p, 4);
          out[i] = Out(v);
        } else {
          double v;
          std::memcpy(&v, p, 8);
          out[i] = Out(v);
        }
        break;
      case 'i':
        switch (a.item_bytes) {
          case 1:
            out[i] = Out(std::int8_t(p[0]));
            break;
          case 2:
            out[i] = Out(std::int16_t(le16(p)));
            break;
          case 4:
            out[i] = Out(std::int32_t(le32(p)));
            break;
          default:
            out[i] = Out(std::int64_t(le64(p)));
            break;
        }
        break;
      case 'u':
        switch (a.item_bytes) {
          case 1:
            out[i] = Out(p[0]);
            break;
          case 2:
            out[i] = Out(le16(p));
            break;
          case 4:
            out[i] = Out(le32(p));
            break;
          default:
            out[i] = Out(le64(p));
            break;
        }
        break;
      default:
        out[i] = Out(p[0] != 0);
        break;  // 'b'
    }
  }
  return out;
}

std::vector<float> NpyArray::to_float() const {
  if (kind != 'f') throw Error(where() + ": expected a float dtype, found '" + descr + "'");
  return convert<float>(*this);
}
std::vector<double> NpyArray::to_double() const {
  if (kind != 'f') throw Error(where() + ": expected a float dtype, found '" + descr + "'");
  return convert<double>(*this);
}
std::vector<std::int64_t> NpyArray::to_int64() const {
  if (kind != 'i' && kind != 'u' && kind != 'b')
    throw Error(where() + ": expected an integer dtype, found '" + descr + "'");
  return convert<std::int64_t>(*this);
}
std::vector<std::uint8_t> NpyArray::to_bool() const {
  if (kind != 'b' && kind != 'i' && kind != 'u')
    throw Error(where() + ": expected a bool dtype, found '" + descr + "'");
  auto v = convert<std::int64_t>(*this);
  std::vector<std::uint8_t> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] != 0 && v[i] != 1) throw Error(where() + ": expected a bool mask, found value " + std::to_string(v[i]));
    out[i] = std::uint8_t(v[i]);
  }
  return out;
}

// The value of 'key' in a .npy header (a Python dict literal): the text after the key's colon and
// spaces, between `open` and `close` (open 0: from the first character up to close, a ',' or '}';
// spaces trimmed). Empty when the key or its delimiters are missing.
static std::string header_value(const std::string& header, const std::string& key, char open, char close) {
  const auto k = header.find("'" + key + "'");
  if (k == std::string::npos) return "";
  auto i = header.find(':', k + key.size() + 2);
  if (i == std::string::npos) return "";
  ++i;
  while (i < header.size() && std::isspace(static_cast<unsigned char>(header[i]))) ++i;
  if (open != 0) {
    if (i >= header.size() || header[i] != open) return "";
    const auto e = header.find(close, i + 1);
    return e == std::string::npos ? "" : header.substr(i + 1, e - i - 1);
  }
  auto e = i;
  while (e < header.size() && header[e] != close && header[e] != '}' &&
         !std::isspace(static_cast<unsigned char>(header[e])))
    ++e;
  return header.substr(i, e - i);
}

static NpyArray parse_header(const std::vector<std::uint8_t>& bytes, const std::string& file, const std::string& member,
                             std::size_t* payload_offset) {
  NpyArray a;
  a.file = file;
  a.member = member;
  static const std::uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (bytes.size() < 10 || std::memcmp(bytes.data(), magic, 6) != 0)
    throw Error(a.where() + ": not a .npy array (bad magic)");
  const int major = bytes[6];
  std::size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = le16(&bytes[8]);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw Error(a.where() + ": truncated .npy header");
    header_len = le32(&bytes[8]);
    start = 12;
  } else {
    throw Error(a.where() + ": unsupported .npy version " + std::to_string(major));
  }
  if (start + header_len > bytes.size()) throw Error(a.where() + ": truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(&bytes[start]), header_len);
  a.descr = header_value(header, "descr", '\'', '\'');
  if (a.descr.empty() && header.find("'descr'") == std::string::npos)
    throw Error(a.where() + ": .npy header has no 'descr' (object or structured dtype?)");
  const std::string order_flag = header_value(header, "fortran_order", 0, ',');
  if (order_flag != "True" && order_flag != "False") throw Error(a.where() + ": .npy header has no 'fortran_order'");
  a.fortran_order = order_flag == "True";
  if (header.find("'shape'") == std::string::npos) throw Error(a.where() + ": .npy header has no 'shape'");
  const std::string dims = header_value(header, "shape", '(', ')');
  for (std::size_t i = 0; i < dims.size();) {
    if (!std::isdigit(static_cast<unsigned char>(dims[i]))) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < dims.size() && std::isdigit(static_cast<unsigned char>(dims[j]))) ++j;
    a.shape.push_back(std::stoll(dims.substr(i, j - i)));
    i = j;
  }
  if (a.descr.size() < 3) throw Error(a.where() + ": unsupported dtype '" + a.descr + "'");
  const char order = a.descr[0];
  a.kind = a.descr[1];
  a.item_bytes = std::atoi(a.descr.c_str() + 2);
  if (order == '>' && a.item_bytes > 1)
    throw Error(a.where() + ": big-endian dtype '" + a.descr + "' is not supported");
  const bool ok = (a.kind == 'f' && (a.item_bytes == 4 || a.item_bytes == 8)) ||
                  ((a.kind == 'i' || a.kind == 'u') &&
                   (a.item_bytes == 1 || a.item_bytes == 2 || a.item_bytes == 4 || a.item_bytes == 8)) ||
                  (a.kind == 'b' && a.item_bytes == 1);
  if (!ok) a.kind = '?';  // readable header, but no numeric conversion (strings, objects...)
  *payload_offset = start + header_len;
  return a;
}

NpyArray parse_npy(std::vector<std::uint8_t> bytes, const std::string& file, const std::string& member) {
  std::size_t off = 0;
  NpyArray a = parse_header(bytes, file, member, &off);
  if (a.kind == '?') throw Error(a.where() + ": unsupported dtype '" + a.descr + "'");
  const std::uint64_t need = std::uint64_t(a.count()) * std::uint64_t(a.item_bytes);
  if (bytes.size() - off < need)
    throw Error(a.where() + ": truncated payload (" + std::to_string(bytes.size() - off) + " of " +
                std::to_string(need) + " bytes)");
  // The payload stays in the archive's buffer (no second copy of a large member).
  bytes.erase(bytes.begin(), bytes.begin() + std::ptrdiff_t(off));
  bytes.resize(std::size_t(need));
  a.data = std::move(bytes);
  if (a.fortran_order && a.shape.size() >= 2) {
    // Reverse the axes: element (i0..ik) lives at Fortran offset sum i_j * prod(shape[<j]).
    const int nd = int(a.shape.size());
    const std::int64_t n = a.count();
    std::vector<std::uint8_t> c(a.data.size());
    std::vector<std::int64_t> idx(nd, 0), fstride(nd, 1);
    for (int j = 1; j < nd; ++j) fstride[j] = fstride[j - 1] * a.shape[j - 1];
    for (std::int64_t lin = 0; lin < n; ++lin) {
      std::int64_t f = 0;
      for (int j = 0; j < nd; ++j) f += idx[j] * fstride[j];
      std::memcpy(&c[lin * a.item_bytes], &a.data[f * a.item_bytes], a.item_bytes);
      for (int j = nd - 1; j >= 0; --j) {  // C-order increment
        if (++idx[j] < a.shape[j]) break;
        idx[j] = 0;
      }
    }
    a.data.swap(c);
  }
  return a;
}

NpzFile::NpzFile(std::string path) : path_(std::move(path)) {
  std::ifstream in(path_, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path_ + ": cannot open file");
  file_size_ = std::uint64_t(in.tellg());
  const std::uint64_t tail = std::min<std::uint64_t>(file_size_, 65535 + 22 + 20);
  auto buf = read_range(path_, file_size_ - tail, tail);
  std::int64_t eocd = -1;
  for (std::int64_t i = std::int64_t(tail) - 22; i >= 0; --i)
    if (le32(&buf[i]) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd < 0) throw Error(path_ + ": not a zip archive or truncated (no end-of-central-directory record)");
  std::uint64_t n_entries = le16(&buf[eocd + 10]);
  std::uint64_t cd_size = le32(&buf[eocd + 12]);
  std::uint64_t cd_offset = le32(&buf[eocd + 16]);
  if (eocd >= 20 && le32(&buf[eocd - 20]) == 0x07064b50) {  // zip64 locator
    const std::uint64_t z64 = le64(&buf[eocd - 20 + 8]);
    auto rec = read_range(path_, z64, 56);
    if (le32(rec.data()) != 0x06064b50) throw Error(path_ + ": corrupt zip64 directory");
    n_entries = le64(&rec[32]);
    cd_size = le64(&rec[40]);
    cd_offset = le64(&rec[48]);
  }
  if (cd_offset + cd_size > file_size_) throw Error(path_ + ": file is truncated (central directory)");
  auto cd = read_range(path_, cd_offset, cd_size);
  std::size_t p = 0;
  for (std::uint64_t e = 0; e < n_entries; ++e) {
    if (p + 46 > cd.size() || le32(&cd[p]) != 0x02014b50) throw Error(path_ + ": corrupt zip central directory");
    Entry en;
    en.method = le16(&cd[p + 10]);
    en.crc = le32(&cd[p + 16]);
    en.compressed = le32(&cd[p + 20]);
    en.uncompressed = le32(&cd[p + 24]);
    const std::size_t name_len = le16(&cd[p + 28]), extra_len = le16(&cd[p + 30]), comment_len = le16(&cd[p + 32]);
    en.local_offset = le32(&cd[p + 42]);
    if (p + 46 + name_len + extra_len > cd.size()) throw Error(path_ + ": corrupt zip central directory");
    en.name.assign(reinterpret_cast<const char*>(&cd[p + 46]), name_len);
    // zip64 extended information: present fields replace the 0xFFFFFFFF placeholders, in order.
    for (std::size_t x = p + 46 + name_len; x + 4 <= p + 46 + name_len + extra_len;) {
      const std::uint16_t id = le16(&cd[x]), len = le16(&cd[x + 2]);
      if (id == 0x0001) {
        std::size_t f = x + 4;
        if (en.uncompressed == 0xFFFFFFFFu) en.uncompressed = le64(&cd[f]), f += 8;
        if (en.compressed == 0xFFFFFFFFu) en.compressed = le64(&cd[f]), f += 8;
        if (en.local_offset == 0xFFFFFFFFu) en.local_offset = le64(&cd[f]);
      }
      x += 4 + len;
    }
    if (en.name.size() > 4 && en.name.ends_with(".npy")) en.name.resize(en.name.size() - 4);
    entries_.push_back(std::move(en));
    p += 46 + name_len + extra_len + comment_len;
  }
}

std::vector<std::string> NpzFile::members() const {
  std::vector<std::string> names;
  for (const auto& e : entries_) names.push_back(e.name);
  return names;
}

bool NpzFile::has(const std::string& member) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == member; });
}

const NpzFile::Entry& NpzFile::find(const std::string& member) const {
  for (const auto& e : entries_)
    if (e.name == member) return e;
  throw Error(path_ + ": member '" + member + "' is missing");
}

std::uint64_t NpzFile::data_offset(const Entry& e) const {
  const std::string where = path_ + ": member '" + e.name + "'";
  if (e.local_offset + 30 > file_size_) throw Error(where + ": truncated (local header)");
  auto lh = read_range(path_, e.local_offset, 30);
  if (le32(lh.data()) != 0x04034b50) throw Error(where + ": corrupt local header");
  const std::uint64_t at = e.local_offset + 30 + le16(&lh[26]) + le16(&lh[28]);
  if (at + e.compressed > file_size_)
    throw Error(where + ": truncated (" + std::to_string(file_size_ - std::min(file_size_, at)) + " of " +
                std::to_string(e.compressed) + " bytes present)");
  return at;
}

std::vector<std::uint8_t> NpzFile::raw_range(const Entry& e, std::uint64_t begin, std::uint64_t count) const {
  const std::string where = path_ + ": member '" + e.name + "'";
  if (begin + count > e.uncompressed)
    throw Error(where + ": truncated (bytes up to " + std::to_string(begin + count) + " wanted, " +
                std::to_string(e.uncompressed) + " stored)");
  const std::uint64_t at = data_offset(e);
  if (e.method == 0) return read_range(path_, at + begin, count);
  if (e.method != 8) throw Error(where + ": unsupported zip compression method " + std::to_string(e.method));
  std::ifstream in(path_, std::ios::binary);
  if (!in) throw Error(path_ + ": cannot open file");
  in.seekg(std::streamoff(at));
  constexpr std::uint64_t kChunk = 4u << 20;
  std::vector<std::uint8_t> out(count), input(kChunk), skip(kChunk);
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw Error(where + ": zlib initialisation failed");
  std::uint64_t read_in = 0, produced = 0;  // compressed bytes read, uncompressed bytes produced
  bool ok = true;
  while (produced < begin + count) {
    if (zs.avail_in == 0) {
      const std::uint64_t n = std::min(kChunk, e.compressed - read_in);
      if (n == 0) {
        ok = false;  // the stream ended early
        break;
      }
      in.read(reinterpret_cast<char*>(input.data()), std::streamsize(n));
      if (std::uint64_t(in.gcount()) != n) throw Error(where + ": truncated");
      read_in += n;
      zs.next_in = input.data();
      zs.avail_in = uInt(n);
    }
    // Before the slice: into the scratch buffer (dropped); then straight into the result.
    const bool before = produced < begin;
    const std::uint64_t room = before ? std::min(kChunk, begin - produced) : std::min(kChunk, begin + count - produced);
    zs.next_out = before ? skip.data() : out.data() + (produced - begin);
    zs.avail_out = uInt(room);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    const std::uint64_t got = room - zs.avail_out;
    produced += got;
    if (rc == Z_STREAM_END) break;
    if ((rc != Z_OK && rc != Z_BUF_ERROR) || (rc == Z_BUF_ERROR && got == 0 && zs.avail_in > 0)) {
      ok = false;
      break;
    }
  }
  inflateEnd(&zs);
  if (!ok || produced < begin + count) throw Error(where + ": corrupt deflate stream");
  return out;
}

std::vector<std::uint8_t> NpzFile::raw_bytes(const Entry& e, std::uint64_t max_uncompressed) const {
  // A prefix (a header) inflates only what it needs. A whole deflated member is checked against its
  // CRC (in 1 GiB steps: zlib's length is 32-bit); stored members are not (their reads stay at disk speed).
  if (max_uncompressed < e.uncompressed) return raw_range(e, 0, max_uncompressed);
  auto out = raw_range(e, 0, e.uncompressed);
  if (e.method == 8) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (std::uint64_t at = 0; at < out.size(); at += 1u << 30)
      crc = crc32(crc, out.data() + at, uInt(std::min<std::uint64_t>(1u << 30, out.size() - at)));
    if (crc != e.crc) throw Error(path_ + ": member '" + e.name + "': CRC mismatch (corrupt member)");
  }
  return out;
}

NpyArray NpzFile::read(const std::string& member) const {
  const Entry& e = find(member);
  return parse_npy(raw_bytes(e, e.uncompressed), path_, member);
}

NpyArray NpzFile::read_header(const std::string& member) const {
  const Entry& e = find(member);
  auto head = raw_bytes(e, std::min<std::uint64_t>(e.uncompressed, 4096));
  std::size_t off = 0;
  return parse_header(head, path_, member, &off);
}

NpyArray NpzFile::read_rows(const std::string& member, std::int64_t lo, std::int64_t hi) const {
  const Entry& e = find(member);
  auto head = raw_bytes(e, std::min<std::uint64_t>(e.uncompressed, 4096));
  std::size_t off = 0;
  NpyArray a = parse_header(head, path_, member, &off);
  if (a.kind == '?') throw Error(a.where() + ": unsupported dtype '" + a.descr + "'");
  if (a.shape.empty()) throw Error(a.where() + ": a 0-d array has no rows to slice");
  if (lo < 0 || hi < lo || hi > a.shape[0])
    throw Error(a.where() + ": rows [" + std::to_string(lo) + ", " + std::to_string(hi) + ") outside [0, " +
                std::to_string(a.shape[0]) + ")");
  std::uint64_t row_bytes = std::uint64_t(a.item_bytes);
  for (std::size_t j = 1; j < a.shape.size(); ++j) row_bytes *= std::uint64_t(a.shape[j]);
  if (a.fortran_order && a.shape.size() >= 2) {  // the rows are strided: read whole, keep the slice
    NpyArray whole = read(member);
    whole.data.erase(whole.data.begin() + std::ptrdiff_t(std::uint64_t(hi) * row_bytes), whole.data.end());
    whole.data.erase(whole.data.begin(), whole.data.begin() + std::ptrdiff_t(std::uint64_t(lo) * row_bytes));
    whole.shape[0] = hi - lo;
    return whole;
  }
  if (off + std::uint64_t(a.shape[0]) * row_bytes > e.uncompressed)
    throw Error(a.where() + ": truncated payload (" +
                std::to_string(e.uncompressed - std::min<std::uint64_t>(off, e.uncompressed)) + " of " +
                std::to_string(std::uint64_t(a.shape[0]) * row_bytes) + " bytes)");
  a.data = raw_range(e, off + std::uint64_t(lo) * row_bytes, std::uint64_t(hi - lo) * row_bytes);
  a.shape[0] = hi - lo;
  return a;
}

namespace {
void put16(std::string& o, std::uint32_t v) {
  o.push_back(char(v & 0xff));
  o.push_back(char((v >> 8) & 0xff));
}
void put32(std::string& o, std::uint32_t v) {
  put16(o, v & 0xffff);
  put16(o, v >> 16);
}
// A version-1.0 .npy header, padded so the payload starts on a 64-byte boundary.
std::string npy_header(const NpyOut& a) {
  std::string shape = "(";
  for (std::size_t i = 0; i < a.shape.size(); ++i)
    shape += std::to_string(a.shape[i]) + (a.shape.size() == 1 ? "," : i + 1 < a.shape.size() ? ", " : "");
  shape += ")";
  std::string dict = "{'descr': '" + a.descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const std::size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::string h = "\x93NUMPY";
  h.push_back('\x01');
  h.push_back('\x00');
  put16(h, std::uint32_t(dict.size()));
  return h + dict;
}
}  // namespace

void write_npz(const std::string& path, const std::vector<NpyOut>& arrays) {
  constexpr std::uint64_t kLimit = 0xffffffffull;
  struct Central {
    std::string name;
    std::uint32_t crc, size, offset;
  };
  std::vector<Central> central;
  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
  auto fail = [&](const std::string& why) {
    out.close();
    std::remove(tmp.c_str());
    throw Error(why);
  };
  std::uint64_t offset = 0;
  for (const auto& a : arrays) {
    std::uint64_t items = 1;
    for (auto d : a.shape) items *= std::uint64_t(d);
    const std::uint64_t item = a.descr.size() >= 3 ? std::stoull(a.descr.substr(2)) : 0;
    if (item == 0 || items * item != a.bytes)
      fail(path + ": member '" + a.member + "': " + std::to_string(a.bytes) + " bytes do not match shape and dtype " +
           a.descr);
    const std::string header = npy_header(a);
    const std::uint64_t size = header.size() + a.bytes;
    const std::string name = a.member + ".npy";
    if (size > kLimit || offset + size + 30 + name.size() > kLimit)
      fail(path + ": member '" + a.member + "' would pass 4 GiB (zip64 is not written)");
    uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(header.data()), uInt(header.size()));
    for (std::uint64_t at = 0; at < a.bytes; at += (1u << 30)) {
      const auto n = std::min<std::uint64_t>(1u << 30, a.bytes - at);
      crc = crc32(crc, static_cast<const Bytef*>(a.data) + at, uInt(n));
    }
    std::string local;
    put32(local, 0x04034b50);
    put16(local, 20);    // version needed
    put16(local, 0);     // flags
    put16(local, 0);     // stored
    put16(local, 0);     // time
    put16(local, 0x21);  // date: 1980-01-01
    put32(local, std::uint32_t(crc));
    put32(local, std::uint32_t(size));
    put32(local, std::uint32_t(size));
    put16(local, std::uint32_t(name.size()));
    put16(local, 0);
    local += name;
    out.write(local.data(), std::streamsize(local.size()));
    out.write(header.data(), std::streamsize(header.size()));
    out.write(static_cast<const char*>(a.data), std::streamsize(a.bytes));
    central.push_back({name, std::uint32_t(crc), std::uint32_t(size), std::uint32_t(offset)});
    offset += local.size() + size;
  }
  std::string dir;
  for (const auto& c : central) {
    put32(dir, 0x02014b50);
    put16(dir, 20);
    put16(dir, 20);
    put16(dir, 0);
    put16(dir, 0);
    put16(dir, 0);
    put16(dir, 0x21);
    put32(dir, c.crc);
    put32(dir, c.size);
    put32(dir, c.size);
    put16(dir, std::uint32_t(c.name.size()));
    put16(dir, 0);  // extra
    put16(dir, 0);  // comment
    put16(dir, 0);  // disk
    put16(dir, 0);  // internal attributes
    put32(dir, 0);  // external attributes
    put32(dir, c.offset);
    dir += c.name;
  }
  if (offset + dir.size() > kLimit) fail(path + ": archive would pass 4 GiB (zip64 is not written)");
  std::string end;
  put32(end, 0x06054b50);
  put16(end, 0);
  put16(end, 0);
  put16(end, std::uint32_t(central.size()));
  put16(end, std::uint32_t(central.size()));
  put32(end, std::uint32_t(dir.size()));
  put32(end, std::uint32_t(offset));
  put16(end, 0);
  out.write(dir.data(), std::streamsize(dir.size()));
  out.write(end.data(), std::streamsize(end.size()));
  out.close();
  if (!out) fail(path + ": write failed (" + std::strerror(errno) + ")");
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    fail(path + ": cannot rename " + tmp + " (" + std::strerror(errno) + ")");
}

}  // namespace adaqp::graph
