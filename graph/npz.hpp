// Reader for NumPy .npz archives (a zip of .npy members, stored or deflated) and .npy arrays, and a
// writer of stored (uncompressed) archives.
// Every error is an adaqp::Error naming the file and, where it applies, the member.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace adaqp::graph {

// One decoded .npy array. `data` holds count() elements of `item_bytes` each, little-endian,
// always in C (row-major) order: Fortran-ordered arrays are transposed when read.
struct NpyArray {
  std::string file;    // archive path, for messages
  std::string member;  // member name without ".npy"
  char kind = 0;       // numpy kind: 'f' float, 'i' signed, 'u' unsigned, 'b' bool, other
  int item_bytes = 0;
  std::string descr;  // e.g. "<f4"
  std::vector<std::int64_t> shape;
  bool fortran_order = false;  // as stored (data is already converted to C order)
  std::vector<std::uint8_t> data;

  std::int64_t count() const;
  std::string where() const { return file + ": member '" + member + "'"; }

  // Typed copies; each checks the kind (integer / float / bool) and throws naming the member.
  std::vector<float> to_float() const;         // kinds f (f4, f8)
  std::vector<double> to_double() const;       // kinds f
  std::vector<std::int64_t> to_int64() const;  // kinds i, u (and b as 0/1)
  std::vector<std::uint8_t> to_bool() const;   // kind b, or integers 0/1

  // Throws unless the array has exactly `ndim` dimensions.
  void expect_ndim(int ndim) const;
};

// Parses a whole .npy byte image (magic, header dict, payload). `file`/`member` name it in errors.
NpyArray parse_npy(std::vector<std::uint8_t> bytes, const std::string& file, const std::string& member);

// An open .npz archive: the central directory is read on construction; members on demand.
class NpzFile {
 public:
  explicit NpzFile(std::string path);
  const std::string& path() const { return path_; }
  std::vector<std::string> members() const;  // names without ".npy"
  bool has(const std::string& member) const;
  // Reads and decodes one member; throws if missing, truncated, corrupt (CRC) or not a .npy.
  NpyArray read(const std::string& member) const;
  // Reads only the shape and dtype of a member (payload skipped when stored uncompressed).
  NpyArray read_header(const std::string& member) const;
  // Reads rows [lo, hi) of a member's first axis (shape[0] of the result is hi - lo): a stored member
  // is read at the rows' offset, a deflated one is inflated in 4 MiB chunks up to the rows' end and
  // the bytes before them dropped, so only the slice is held (not CRC-checked: the checksum covers
  // the whole member). A Fortran-ordered array of two or more dimensions is read whole and cut.
  // Throws naming the member for a range outside [0, shape[0]], a 0-d array, or a truncated payload.
  NpyArray read_rows(const std::string& member, std::int64_t lo, std::int64_t hi) const;

 private:
  struct Entry {
    std::string name;
    std::uint16_t method = 0;
    std::uint32_t crc = 0;
    std::uint64_t compressed = 0, uncompressed = 0, local_offset = 0;
  };
  const Entry& find(const std::string& member) const;
  std::vector<std::uint8_t> raw_bytes(const Entry& e, std::uint64_t max_uncompressed) const;
  std::uint64_t data_offset(const Entry& e) const;  // where the member's (compressed) bytes start
  // Uncompressed bytes [begin, begin + count) of a member, holding only those.
  std::vector<std::uint8_t> raw_range(const Entry& e, std::uint64_t begin, std::uint64_t count) const;
  std::string path_;
  std::uint64_t file_size_ = 0;
  std::vector<Entry> entries_;
};

// One array to write: `data` holds the elements (item size from descr: "<f4", "<i8", "|b1", ...)
// in C order; the product of `shape` must match the byte count.
struct NpyOut {
  std::string member;  // without ".npy"
  std::string descr;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
  std::uint64_t bytes = 0;
};

// Writes an .npz archive (stored members, CRC-32, no zip64: members and archive below 4 GiB) to
// `path` atomically (a temporary file renamed over it). Throws adaqp::Error naming the path or
// the member (too large, size mismatch, write failure); nothing is left behind on error.
void write_npz(const std::string& path, const std::vector<NpyOut>& arrays);

}  // namespace adaqp::graph
