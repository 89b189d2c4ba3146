// The one output protocol of formats/output.h: temporary folder and rename, the overwrite rule
// (nothing foreign is replaced; the run's own folder keeps its state and anything that is not a
// previous output), and the one list of side files.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>

#include "export_fixtures.h"
#include "formats/fakequant.h"
#include "formats/output.h"
#include "io/mapped_file.h"
#include "util/error.h"

namespace calq::test {
namespace {

namespace fs = std::filesystem;

TEST(FormatsOutput, FolderAppearsWhole) {
  ScratchDir dir("out_whole");
  {
    OutputDir out(dir / "a");
    write_file_atomic(out.path("x.json"), "{}");
    EXPECT_FALSE(fs::exists(dir / "a"));  // nothing under the final name before commit()
    out.commit();
  }
  EXPECT_EQ(read_file(dir / "a/x.json"), "{}");
  EXPECT_FALSE(fs::exists(dir / "a.calq-tmp"));
  {
    OutputDir out(dir / "b");
    write_file_atomic(out.path("x.json"), "{}");
  }  // abandoned (an exception on the way): nothing is left
  EXPECT_FALSE(fs::exists(dir / "b"));
  EXPECT_FALSE(fs::exists(dir / "b.calq-tmp"));
  fs::create_directories(dir / "empty");
  OutputDir ok(dir / "empty");  // an empty folder is accepted
  ok.commit();
}

TEST(FormatsOutput, NothingForeignIsOverwritten) {
  ScratchDir dir("out_rule");
  fs::create_directories(dir / "taken");
  write_file_atomic(dir / "taken/notes.txt", "mine");
  EXPECT_THROW(OutputDir(dir / "taken"), ArgError);
  EXPECT_THROW(check_output_dir(dir / "taken", {"qstate"}), ArgError);
  EXPECT_THROW(check_new_output_file(dir / "taken/notes.txt"), ArgError);
  EXPECT_NO_THROW(check_new_output_file(dir / "taken/new.gguf"));
  // A folder holding the run's own state is the run's: its previous weights are replaced, the
  // state and everything else stay.
  fs::create_directories(dir / "run/qstate");
  write_file_atomic(dir / "run/qstate/state.json", "{}");
  write_file_atomic(dir / "run/notes.txt", "mine");
  write_file_atomic(dir / "run/model-00001-of-00002.safetensors", "old");
  write_file_atomic(dir / "run/model.safetensors.index.json", "old");
  OutputDir out(dir / "run", {"qstate"});
  write_file_atomic(out.path("model.safetensors"), "new");
  write_file_atomic(out.path("config.json"), "{}");
  out.commit();
  EXPECT_EQ(read_file(dir / "run/model.safetensors"), "new");
  EXPECT_EQ(read_file(dir / "run/qstate/state.json"), "{}");
  EXPECT_EQ(read_file(dir / "run/notes.txt"), "mine");
  EXPECT_FALSE(fs::exists(dir / "run/model-00001-of-00002.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "run/model.safetensors.index.json"));
}

TEST(FormatsOutput, FakeQuantFolderFollowsTheProtocol) {
  const std::string model = data("models/stories260K");
  ScratchDir dir("out_fq");
  const QuantState qs = write_quant_state(rtn_quantize_model(model, {8, 64, true, false}), dir / "run/qstate");
  write_fake_quant_checkpoint(qs, dir / "run");
  const std::string first = read_file(dir / "run/model.safetensors");
  write_fake_quant_checkpoint(qs, dir / "run");  // the run's own folder is rewritten, bitwise alike
  EXPECT_EQ(read_file(dir / "run/model.safetensors"), first);
  EXPECT_TRUE(QuantState::exists(dir / "run/qstate"));
  // The side files are the one list, nothing else (the model card stays behind).
  for (const char* f : kSideFiles) EXPECT_EQ(fs::exists(dir / "run/" + f), fs::exists(path_join(model, f))) << f;
  EXPECT_TRUE(fs::exists(dir / "run/tokenizer.json"));
  EXPECT_FALSE(fs::exists(dir / "run/README.md"));
  // Elsewhere, the rule for a fresh output holds.
  fs::create_directories(dir / "other");
  write_file_atomic(dir / "other/notes.txt", "mine");
  EXPECT_THROW(write_fake_quant_checkpoint(qs, dir / "other"), ArgError);
  EXPECT_EQ(read_file(dir / "other/notes.txt"), "mine");
}



// Outputs never destroy what they replace: a target that exists and is not a regular file or a
// folder (a FIFO here; /dev/null as root before the fix) is refused before anything is written, by
// every writer, and stays what it was. (Before: the temporary file was renamed over it.)
TEST(FormatsOutput, DevicesAreNeverReplaced) {
  ScratchDir dir("out_fifo");
  const std::string fifo = dir / "fifo", link = dir / "link";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fs::create_symlink(fifo, link);
  auto is_fifo = [&] { return fs::is_fifo(fs::symlink_status(fifo)) && fs::is_symlink(fs::symlink_status(link)); };
  for (const std::string& target : {fifo, link}) {
    EXPECT_THROW(write_file_atomic(target, "x"), ArgError) << target;
    EXPECT_THROW(AtomicFile{target}, ArgError) << target;
    EXPECT_THROW(check_new_output_file(target), ArgError) << target;
    EXPECT_THROW(check_output_dir(target), ArgError) << target;
    EXPECT_THROW(OutputDir{target}, ArgError) << target;
    try {
      check_output_target(target);
      ADD_FAILURE() << "accepted " << target;
    } catch (const ArgError& e) {
      EXPECT_NE(std::string(e.what()).find("a FIFO"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(is_fifo());
    EXPECT_FALSE(fs::exists(target + ".tmp"));
  }
  // A regular file or a folder is fine, and a stale temporary is replaced, not written through.
  write_file_atomic(dir / "f.json", "1");
  fs::create_symlink(dir / "victim", dir / "g.json.tmp");
  write_file_atomic(dir / "victim", "keep");
  write_file_atomic(dir / "g.json", "2");
  EXPECT_EQ(read_file(dir / "g.json"), "2");
  EXPECT_EQ(read_file(dir / "victim"), "keep");
  // The command line: `calq logits ... -o FIFO` fails with one line before running the model.
  const std::string ids = dir / "ids.json";
  write_file_atomic(ids, "{\"input_ids\": [[1, 2, 3]]}");
  std::string out;
  EXPECT_EQ(run_command(cli() + " logits " + data("models/stories260K") + " --ids " + ids + " -o " + fifo, &out), 1);
  EXPECT_NE(out.find("calq: error: " + fifo + ": exists and is a FIFO"), std::string::npos) << out;
  EXPECT_TRUE(is_fifo());
}

}  // namespace
}  // namespace calq::test
