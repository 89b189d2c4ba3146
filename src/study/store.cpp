#include "study/store.h"

#include <sqlite3.h>

#include <functional>
#include <set>

#include "util/error.h"

namespace calq::study {

namespace {

// A prepared statement with positional binds; throws IoError naming the store on any failure.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const std::string& what) : db_(db), what_(what) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st_, nullptr) != SQLITE_OK) fail("prepare");
  }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(st_, i, v.c_str(), int(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind(int i, const char* v) { return bind(i, std::string(v)); }
  Stmt& bind(int i, double v) {
    check(sqlite3_bind_double(st_, i, v));
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(st_, i, v));
    return *this;
  }
  Stmt& bind(int i, int v) { return bind(i, int64_t(v)); }
  Stmt& bind_json(int i, const Json& j) { return bind(i, j.dump()); }
  bool step() {  // true while a row is available
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail("step");
    return false;
  }
  void run() {
    while (step()) {
    }
  }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(st_, c);
    return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  }
  double real(int c) const { return sqlite3_column_double(st_, c); }
  int64_t integer(int c) const { return sqlite3_column_int64(st_, c); }
  Json json(int c) const {
    const std::string t = text(c);
    return t.empty() ? Json() : Json::parse(t, nullptr, false);
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail("bind");
  }
  [[noreturn]] void fail(const char* op) const { throw IoError(what_ + ": SQLite " + op + ": " + sqlite3_errmsg(db_)); }
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  std::string what_;
};

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
  cell TEXT PRIMARY KEY, position INTEGER NOT NULL, label TEXT NOT NULL, model TEXT NOT NULL,
  synthetic INTEGER NOT NULL, calib TEXT, calib_group TEXT, seed INTEGER, method TEXT NOT NULL,
  method_label TEXT NOT NULL, settings TEXT, kv TEXT, kv_label TEXT, status TEXT NOT NULL, error TEXT,
  inputs TEXT, artifacts TEXT, seconds REAL, peak_rss_mb REAL, finished_utc TEXT, calq_version TEXT,
  machine TEXT, result TEXT);
CREATE TABLE IF NOT EXISTS metrics (cell TEXT NOT NULL, eval TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
  PRIMARY KEY (cell, eval, metric));
CREATE TABLE IF NOT EXISTS evals (cell TEXT NOT NULL, eval TEXT NOT NULL, kind TEXT, eval_key TEXT, data TEXT,
  settings TEXT, seconds REAL, PRIMARY KEY (cell, eval));
CREATE TABLE IF NOT EXISTS steps (key TEXT PRIMARY KEY, kind TEXT, label TEXT, status TEXT, error TEXT,
  seconds REAL, peak_rss_mb REAL, cost TEXT, finished_utc TEXT, machine TEXT);
)sql";

}  // namespace

std::unique_ptr<Store> Store::open(const std::string& path) {
  std::unique_ptr<Store> s(new Store());
  s->path_ = path;
  if (sqlite3_open_v2(path.c_str(), &s->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK)
    throw IoError(path + ": cannot open the study store: " + (s->db_ ? sqlite3_errmsg(s->db_) : "out of memory"));
  sqlite3_busy_timeout(s->db_, 10000);
  const std::string v = [&] {
    try {
      s->exec(kSchema);
      return s->meta("schema_version");
    } catch (const IoError& e) {
      throw FormatError(path + ": not a calq study store (" + e.what() + ")");
    }
  }();
  if (v.empty()) {
    s->set_meta("schema_version", std::to_string(kStoreSchemaVersion));
  } else if (v != std::to_string(kStoreSchemaVersion)) {
    throw FormatError(path + ": study store schema version " + v + ", this calq reads version " +
                      std::to_string(kStoreSchemaVersion));
  }
  return s;
}

Store::~Store() {
  if (db_) sqlite3_close(db_);
}

void Store::exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string m = err ? err : "unknown error";
    sqlite3_free(err);
    throw IoError(path_ + ": SQLite: " + m);
  }
}

namespace {
// BEGIN IMMEDIATE ... COMMIT, rolled back when an exception leaves the scope.
class Transaction {
 public:
  explicit Transaction(const std::function<void(const std::string&)>& exec) : exec_(exec) { exec_("BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) try {
        exec_("ROLLBACK");
      } catch (...) {
      }
  }
  void commit() {
    exec_("COMMIT");
    done_ = true;
  }

 private:
  std::function<void(const std::string&)> exec_;
  bool done_ = false;
};
}  // namespace

void Store::set_meta(const std::string& key, const std::string& value) {
  Stmt(db_, "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2", path_)
      .bind(1, key)
      .bind(2, value)
      .run();
}

std::string Store::meta(const std::string& key) const {
  Stmt st(db_, "SELECT value FROM meta WHERE key = ?1", path_);
  st.bind(1, key);
  return st.step() ? st.text(0) : std::string();
}

void Store::sync_cells(const std::vector<CellRow>& planned) {
  Transaction tx([this](const std::string& s) { exec(s); });
  std::set<std::string> keep;
  for (const CellRow& c : planned) {
    keep.insert(c.cell);
    Stmt(db_,
         "INSERT INTO cells(cell, position, label, model, synthetic, calib, calib_group, seed, method, method_label, "
         "settings, kv, kv_label, status, error) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
         "'pending', '') ON CONFLICT(cell) DO UPDATE SET position = ?2, label = ?3, model = ?4, synthetic = ?5, "
         "calib = ?6, calib_group = ?7, seed = ?8, method = ?9, method_label = ?10, settings = ?11, kv = ?12, "
         "kv_label = ?13",
         path_)
        .bind(1, c.cell).bind(2, c.position).bind(3, c.label).bind(4, c.model).bind(5, int(c.synthetic))
        .bind(6, c.calib).bind(7, c.calib_group).bind(8, c.seed).bind(9, c.method).bind(10, c.method_label)
        .bind_json(11, c.settings).bind_json(12, c.kv).bind(13, c.kv_label)
        .run();
  }
  std::vector<std::string> gone;
  {
    Stmt st(db_, "SELECT cell FROM cells", path_);
    while (st.step())
      if (!keep.count(st.text(0))) gone.push_back(st.text(0));
  }
  for (const auto& g : gone)
    for (const char* t : {"cells", "metrics", "evals"})
      Stmt(db_, std::string("DELETE FROM ") + t + " WHERE cell = ?1", path_).bind(1, g).run();
  tx.commit();
}

void Store::put_cell(const Json& r) {
  const std::string cell = json_get<std::string>(r, "cell", path_ + ": cell result");
  Transaction tx([this](const std::string& s) { exec(s); });
  Stmt(db_,
       "UPDATE cells SET status = ?2, error = ?3, inputs = ?4, artifacts = ?5, seconds = ?6, peak_rss_mb = ?7, "
       "finished_utc = ?8, calq_version = ?9, machine = ?10, result = ?11 WHERE cell = ?1",
       path_)
      .bind(1, cell)
      .bind(2, r.value("status", std::string("failed")))
      .bind(3, r.value("error", std::string()))
      .bind_json(4, r.value("inputs", Json()))
      .bind_json(5, r.value("artifacts", Json()))
      .bind(6, r.value("seconds", 0.0))
      .bind(7, r.value("peak_rss_mb", 0.0))
      .bind(8, r.value("finished_utc", std::string()))
      .bind(9, r.value("calq_version", std::string()))
      .bind_json(10, r.value("machine", Json()))
      .bind_json(11, r)
      .run();
  Stmt(db_, "DELETE FROM metrics WHERE cell = ?1", path_).bind(1, cell).run();
  Stmt(db_, "DELETE FROM evals WHERE cell = ?1", path_).bind(1, cell).run();
  const Json evals = r.value("evals", Json::object());
  for (const auto& [label, e] : evals.items()) {
    Stmt(db_, "INSERT INTO evals(cell, eval, kind, eval_key, data, settings, seconds) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
         path_)
        .bind(1, cell).bind(2, label).bind(3, e.value("kind", std::string())).bind(4, e.value("key", std::string()))
        .bind_json(5, e.value("data", Json())).bind_json(6, e.value("settings", Json())).bind(7, e.value("seconds", 0.0))
        .run();
    const Json metrics = e.value("metrics", Json::object());
    for (const auto& [name, v] : metrics.items()) {
      if (!v.is_number()) continue;
      Stmt(db_, "INSERT INTO metrics(cell, eval, metric, value) VALUES(?1, ?2, ?3, ?4)", path_)
          .bind(1, cell).bind(2, label).bind(3, name).bind(4, v.get<double>())
          .run();
    }
  }
  tx.commit();
}

void Store::set_status(const std::string& cell, const std::string& status, const std::string& error) {
  Stmt(db_, "UPDATE cells SET status = ?2, error = ?3 WHERE cell = ?1", path_).bind(1, cell).bind(2, status).bind(3, error).run();
}

void Store::put_step(const StepRow& s) {
  Stmt(db_,
       "INSERT INTO steps(key, kind, label, status, error, seconds, peak_rss_mb, cost, finished_utc, machine) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(key) DO UPDATE SET kind = ?2, label = ?3, "
       "status = ?4, error = ?5, seconds = ?6, peak_rss_mb = ?7, cost = ?8, finished_utc = ?9, machine = ?10",
       path_)
      .bind(1, s.key).bind(2, s.kind).bind(3, s.label).bind(4, s.status).bind(5, s.error).bind(6, s.seconds)
      .bind(7, s.peak_rss_mb).bind_json(8, s.cost).bind(9, s.finished_utc).bind_json(10, s.machine)
      .run();
}

std::vector<CellRow> Store::cells() const {
  Stmt st(db_,
          "SELECT cell, position, label, model, synthetic, calib, calib_group, seed, method, method_label, settings, kv, "
          "kv_label, status, error, inputs, artifacts, seconds, peak_rss_mb, finished_utc, calq_version, machine "
          "FROM cells ORDER BY position",
          path_);
  std::vector<CellRow> out;
  while (st.step()) {
    CellRow c;
    c.cell = st.text(0);
    c.position = int(st.integer(1));
    c.label = st.text(2);
    c.model = st.text(3);
    c.synthetic = st.integer(4) != 0;
    c.calib = st.text(5);
    c.calib_group = st.text(6);
    c.seed = st.integer(7);
    c.method = st.text(8);
    c.method_label = st.text(9);
    c.settings = st.json(10);
    c.kv = st.json(11);
    c.kv_label = st.text(12);
    c.status = st.text(13);
    c.error = st.text(14);
    c.inputs = st.json(15);
    c.artifacts = st.json(16);
    c.seconds = st.real(17);
    c.peak_rss_mb = st.real(18);
    c.finished_utc = st.text(19);
    c.calq_version = st.text(20);
    c.machine = st.json(21);
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<MetricRow> Store::metrics() const {
  Stmt st(db_,
          "SELECT m.cell, m.eval, m.metric, m.value FROM metrics m JOIN cells c ON c.cell = m.cell "
          "ORDER BY c.position, m.eval, m.metric",
          path_);
  std::vector<MetricRow> out;
  while (st.step()) out.push_back({st.text(0), st.text(1), st.text(2), st.real(3)});
  return out;
}

std::vector<StepRow> Store::steps() const {
  Stmt st(db_, "SELECT key, kind, label, status, error, seconds, peak_rss_mb, cost, finished_utc, machine FROM steps "
               "ORDER BY kind, key", path_);
  std::vector<StepRow> out;
  while (st.step()) {
    StepRow s;
    s.key = st.text(0);
    s.kind = st.text(1);
    s.label = st.text(2);
    s.status = st.text(3);
    s.error = st.text(4);
    s.seconds = st.real(5);
    s.peak_rss_mb = st.real(6);
    s.cost = st.json(7);
    s.finished_utc = st.text(8);
    s.machine = st.json(9);
    out.push_back(std::move(s));
  }
  return out;
}

Json Store::cell_json(const std::string& cell) const {
  Stmt st(db_, "SELECT result FROM cells WHERE cell = ?1", path_);
  st.bind(1, cell);
  return st.step() ? st.json(0) : Json();
}

}  // namespace calq::study
