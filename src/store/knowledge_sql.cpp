// The knowledge SQL both backends share (see knowledge_sql.hpp).
#include "store/knowledge_sql.hpp"

namespace parley::store::knowledge_sql {

std::vector<std::string> erase_user_sql(bool with_tenant, char mark, const char* lock) {
  // Appended rather than added up: g++ 12 warns wrongly about `std::string + char`.
  std::string user(1, mark);
  user += '1';
  std::string second(1, mark);
  second += '2';
  const std::string tenant = with_tenant ? " AND tenant_id = " + second : std::string();
  const std::string owned =
      "(SELECT id FROM knowledge_bases WHERE owner_user_id = " + user + tenant + ")";
  const std::string files = "(SELECT id FROM files WHERE user_id = " + user + tenant + ")";
  std::vector<std::string> out;
  if (lock != nullptr) {
    out.push_back("SELECT id FROM knowledge_bases WHERE (owner_user_id = " + user + tenant +
                  ") OR id IN (SELECT kb_id FROM kb_documents WHERE file_id IN " + files +
                  ") ORDER BY seq FOR UPDATE");
    out.push_back("SELECT id FROM kb_documents WHERE kb_id IN " + owned + " OR file_id IN " +
                  files + " ORDER BY seq FOR UPDATE");
    out.emplace_back(lock);
  }
  out.push_back(
      "INSERT INTO kb_changes (kb_id, op) SELECT id, 'drop' FROM knowledge_bases WHERE "
      "owner_user_id = " +
      user + tenant + " ORDER BY seq");
  // Files uploaded into them (by any key) that no other base's document uses.
  out.push_back(
      "DELETE FROM files WHERE purpose = 'knowledge' AND id IN (SELECT file_id FROM kb_documents "
      "WHERE kb_id IN " +
      owned + ") AND NOT EXISTS (SELECT 1 FROM kb_documents d WHERE d.file_id = files.id AND " +
      "d.kb_id NOT IN " + owned + ")");
  out.push_back("DELETE FROM kb_chunks WHERE kb_id IN " + owned);
  out.push_back("DELETE FROM kb_documents WHERE kb_id IN " + owned);
  out.push_back("DELETE FROM knowledge_bases WHERE owner_user_id = " + user + tenant);
  // What remains of the user's files: documents in bases of others.
  out.push_back(
      "INSERT INTO kb_changes (kb_id, op, chunk_seq, document_id) SELECT c.kb_id, 'remove', "
      "c.seq, c.document_id FROM kb_chunks c JOIN kb_documents d ON d.id = c.document_id WHERE "
      "d.file_id IN " +
      files + " ORDER BY c.seq");
  out.push_back(
      "DELETE FROM kb_chunks WHERE document_id IN (SELECT id FROM kb_documents WHERE file_id IN " +
      files + ")");
  out.push_back("DELETE FROM kb_documents WHERE file_id IN " + files);
  out.push_back("DELETE FROM files WHERE user_id = " + user + tenant);
  // The bytes of the files deleted, unless another file holds them. The user's parameter is
  // named with the tenant's, as PostgreSQL wants every parameter sent to be used.
  out.push_back(
      "DELETE FROM file_contents WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.tenant_id = "
      "file_contents.tenant_id AND f.sha256 = file_contents.sha256)" +
      (with_tenant ? " AND file_contents.tenant_id = " + second + " AND CAST(" + user +
                         " AS TEXT) IS NOT NULL"
                   : std::string()));
  return out;
}

}  // namespace parley::store::knowledge_sql
