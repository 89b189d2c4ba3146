// Unicode helpers for the tokenizer: UTF-8 decoding/encoding, lossy repair (the exact rules of
// Rust's String::from_utf8_lossy), the character classes the Hugging Face `tokenizers` library
// uses through Rust's `char` methods, normalization forms (utf8proc) and the GPT-2 byte<->char map.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace calq::tok {

// Decodes the code point at s[i] (s must be valid UTF-8), advancing i.
char32_t next_codepoint(std::string_view s, size_t& i);
// Byte length of the UTF-8 sequence starting with lead byte `b` (valid UTF-8 assumed).
inline size_t utf8_len(unsigned char b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }
void append_utf8(std::string& out, char32_t cp);
std::string utf8_encode(char32_t cp);

// Length of the longest valid UTF-8 prefix of s (== s.size() when s is valid).
size_t valid_utf8_prefix(std::string_view s);
inline bool is_valid_utf8(std::string_view s) { return valid_utf8_prefix(s) == s.size(); }
// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// Rust char::is_whitespace / regex \s: the Unicode White_Space property.
bool is_whitespace(char32_t c);
// Rust char::is_numeric: general category Nd, Nl or No.
bool is_numeric(char32_t c);
// Rust regex \w: Alphabetic, marks, Nd, Pc, Join_Control (approximated by general categories).
bool is_word_char(char32_t c);
// Unicode punctuation (general category P*) or ASCII punctuation (Rust is_ascii_punctuation).
bool is_punctuation(char32_t c);

enum class NormForm { NFC, NFD, NFKC, NFKD };
// Unicode normalization of valid UTF-8 text (utf8proc).
std::string normalize_unicode(std::string_view s, NormForm form);
// Rust str::to_lowercase applied char by char (full mapping, no context-sensitive rules).
std::string lowercase(std::string_view s);

// GPT-2 bytes_to_unicode(): the printable character that stands for each byte in byte-level BPE.
const std::string& byte_to_char_utf8(uint8_t b);
// Inverse map: byte for a code point of that alphabet, or -1.
int char_to_byte(char32_t cp);

}  // namespace calq::tok
