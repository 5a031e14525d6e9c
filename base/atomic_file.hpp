// Whole-file writes that readers never see half done: the bytes go to PATH.tmp, which is then
// renamed onto PATH (atomic within one file system). Used for profiles, probes and sweep outputs.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>

#include "base/error.hpp"

namespace adaqp {

// Writes `bytes` to `path` atomically. Throws adaqp::Error "PATH: cannot write" when PATH.tmp
// cannot be opened, "PATH: write failed" when writing it fails (PATH.tmp may then remain).
inline void write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(path + ": cannot write");
    f << bytes;
    f.flush();  // a write that fails only when the buffer goes out is caught here
    if (!f) throw Error(path + ": write failed");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace adaqp
