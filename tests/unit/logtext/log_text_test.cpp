#include "voxbridge/logtext/log_text.hpp"

#include <gtest/gtest.h>

#include <string>

namespace voxbridge::logtext {
namespace {

TEST(LogText, ALineBreakInTheTextCannotForgeALogLine) {
  EXPECT_EQ(log_text("Sure.\n[2024-01-01 00:00:00.000] [info] call start uuid=x\r"),
            "Sure.\\n[2024-01-01 00:00:00.000] [info] call start uuid=x\\r");
}

TEST(LogText, QuotesAndBackslashesCannotEndTheQuotedField) {
  EXPECT_EQ(log_text(R"(a" reply="forged \n)"), R"(a\" reply=\"forged \\n)");
}

TEST(LogText, EveryOtherControlByteIsHexAndTextPassesUnchanged) {
  EXPECT_EQ(log_text(std::string("\0\x01\x1b[31m\x7f\t", 9)), "\\x00\\x01\\x1b[31m\\x7f\\t");
  EXPECT_EQ(log_text("Grüße, 你好 ok"), "Grüße, 你好 ok");  // UTF-8 as it is
  EXPECT_EQ(log_text("\xff\xfe"), "\xff\xfe");              // not UTF-8, but no line break
}

TEST(LogText, UnicodeLineBreakersAreEscaped) {
  EXPECT_EQ(log_text("a\xc2\x85"
                     "b\xc2\x9f"
                     "c\xc2\xa0"),
            "a\\u0085b\\u009fc\xc2\xa0");
  EXPECT_EQ(log_text("x\xe2\x80\xa8y\xe2\x80\xa9z\xe2\x80\xa6"), "x\\u2028y\\u2029z\xe2\x80\xa6");
  EXPECT_EQ(log_text("\xc2"), "\xc2");  // a cut sequence at the end stays as it is
}

TEST(LogText, LongTextIsCutWithTheCountOfWhatWasLeftOut) {
  EXPECT_EQ(log_text(std::string(10, 'a'), 4), "aaaa...(+6 bytes)");
  EXPECT_EQ(log_text(std::string(4, 'a'), 4), "aaaa");
  EXPECT_EQ(log_text(std::string(5000, 'b')).size(), kMaxLogTextBytes + 16);
}

}  // namespace
}  // namespace voxbridge::logtext
