// Plain file-system helpers every room may use (the bottom of the layers: no memory mapping, no
// formats). Atomic writers and memory-mapped files are io's (io/mapped_file.h).
#pragma once
#include <string>

namespace calq {

// a + "/" + b (b alone when absolute, either alone when the other is empty).
std::string path_join(const std::string& a, const std::string& b);
bool file_exists(const std::string& path);
// Reads a whole (small) file into a string. Throws IoError naming the path.
std::string read_file(const std::string& path);

}  // namespace calq
