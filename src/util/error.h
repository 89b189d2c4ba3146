// Typed errors for the whole library. Library code throws these (never exit/abort);
// the CLI catches calq::Error, prints what() on one line and exits non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace calq {

// Base of every error calq throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file could not be opened/read/written (OS level).
class IoError : public Error { using Error::Error; };
// A file's content is malformed: bad safetensors header, truncated data, bad JSON, bad GGUF.
class FormatError : public Error { using Error::Error; };
// A well-formed config asks for something inconsistent or missing (unknown model_type, missing field).
class ConfigError : public Error { using Error::Error; };
// A request calq does not support (architecture, dtype, method setting).
class UnsupportedError : public Error { using Error::Error; };
// A caller passed a bad argument (shape mismatch, out-of-range setting).
class ArgError : public Error { using Error::Error; };

}  // namespace calq
