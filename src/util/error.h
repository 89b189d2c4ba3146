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
// A NaN or an infinity where calq needs finite numbers: a weight in a file, an activation during a
// forward pass, the input of a quantizer. The message names the tensor, layer or module at fault.
class NonFiniteError : public Error { using Error::Error; };

// Calls f(); a NonFiniteError it throws is rethrown with "<context>: " in front, so that a driver can
// name the module or layer whose numbers a lower-level routine (which sees only numbers) refused.
template <class F>
decltype(auto) with_context(const std::string& context, F&& f) {
  try {
    return f();
  } catch (const NonFiniteError& e) {
    throw NonFiniteError(context + ": " + e.what());
  }
}

}  // namespace calq
