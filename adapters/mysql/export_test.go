package mysql

// MigrationLockName lets tests hold the lock a migration waits for.
var MigrationLockName = migrationLockName
