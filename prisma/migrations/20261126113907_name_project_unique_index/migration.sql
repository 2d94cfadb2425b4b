-- RenameIndex
ALTER INDEX "projects_owner_id_name_key" RENAME TO "projects_name_key";
