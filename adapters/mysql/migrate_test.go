package mysql_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustchain/trustchain/adapters/mysql"
	"github.com/trustchain/trustchain/domain"
	"github.com/trustchain/trustchain/internal/testkit/mysqltest"
	"github.com/trustchain/trustchain/migrations"
)

// TestMigrations walks one schema through up, up again, down, down again and
// up, checking after each step what exists and what MigrateStatus says.
func TestMigrations(t *testing.T) {
	names := []string{"20250701000000_create_products", "20251201000000_products_id_auto_increment"}
	var pendingRE, appliedRE string
	for _, name := range names {
		pendingRE += `pending  ` + name + `\n`
		appliedRE += `applied  ` + name + `  group 1  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n`
	}
	pending, applied := regexp.MustCompile(`^`+pendingRE+`$`), regexp.MustCompile(`^`+appliedRE+`$`)

	forEachTarget(t, func(t *testing.T, tg target) {
		db := freshDB(t, tg.dsn)
		ctx := context.Background()
		steps := []struct {
			name       string
			run        func(context.Context) error
			wantTable  bool
			wantStatus *regexp.Regexp
		}{
			{name: "fresh schema", run: nil, wantTable: false, wantStatus: pending},
			{name: "down with nothing applied", run: db.MigrateDown, wantTable: false, wantStatus: pending},
			{name: "up", run: db.MigrateUp, wantTable: true, wantStatus: applied},
			{name: "up again does nothing", run: db.MigrateUp, wantTable: true, wantStatus: applied},
			{name: "down", run: db.MigrateDown, wantTable: false, wantStatus: pending},
			{name: "down again does nothing", run: db.MigrateDown, wantTable: false, wantStatus: pending},
			{name: "up after down", run: db.MigrateUp, wantTable: true, wantStatus: applied},
		}
		for _, step := range steps {
			if step.run != nil {
				if err := step.run(ctx); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
			}
			if got := tableExists(t, db, "products"); got != step.wantTable {
				t.Errorf("%s: products table exists = %t, want %t", step.name, got, step.wantTable)
			}
			var status bytes.Buffer
			if err := db.MigrateStatus(ctx, &status); err != nil {
				t.Fatalf("%s: MigrateStatus: %v", step.name, err)
			}
			if !step.wantStatus.Match(status.Bytes()) {
				t.Errorf("%s: MigrateStatus wrote %q, want a match for %q", step.name, status.String(), step.wantStatus)
			}
		}
	})
}

// TestMigrateUpFromReplicas starts several replicas' migrations at once on
// one schema: each must succeed and the migration must be recorded once.
// Without the lock, every replica would see it pending and apply it.
func TestMigrateUpFromReplicas(t *testing.T) {
	const replicas = 4
	forEachTarget(t, func(t *testing.T, tg target) {
		dsn := mysqltest.FreshSchema(t, tg.dsn)
		var dbs []*mysql.DB
		for range replicas {
			dbs = append(dbs, open(t, dsn))
		}

		var wg sync.WaitGroup
		errs := make([]error, len(dbs))
		for i, db := range dbs {
			wg.Go(func() { errs[i] = db.MigrateUp(context.Background()) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: MigrateUp: %v", i, err)
			}
		}

		var records int
		if err := dbs[0].Bun().QueryRowContext(context.Background(), "SELECT COUNT(*) FROM bun_migrations").Scan(&records); err != nil {
			t.Fatalf("count migration records: %v", err)
		}
		ms, err := migrations.Load()
		if err != nil {
			t.Fatal(err)
		}
		if want := len(ms.Sorted()); records != want {
			t.Errorf("bun_migrations has %d records after %d replicas migrated, want %d", records, replicas, want)
		}
	})
}

// TestMigrateUpWaitsForLock holds the migration lock elsewhere: MigrateUp
// must wait for it, give up when ctx does, and run once the lock is free.
func TestMigrateUpWaitsForLock(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		db := freshDB(t, tg.dsn)
		ctx := context.Background()
		var schema string
		if err := db.Bun().QueryRowContext(ctx, "SELECT DATABASE()").Scan(&schema); err != nil {
			t.Fatalf("current database: %v", err)
		}
		holder, err := db.Bun().Conn(ctx)
		if err != nil {
			t.Fatalf("conn: %v", err)
		}
		defer holder.Close()
		var got int
		if err := holder.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", mysql.MigrationLockName(schema)).Scan(&got); err != nil || got != 1 {
			t.Fatalf("take the migration lock: got %d, %v", got, err)
		}

		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if err := db.MigrateUp(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("MigrateUp while the lock is held: error = %v, want one matching %v", err, context.DeadlineExceeded)
		}
		if tableExists(t, db, "products") {
			t.Fatal("MigrateUp created products while another held the lock")
		}

		if _, err := holder.ExecContext(ctx, "SELECT RELEASE_LOCK(?)", mysql.MigrationLockName(schema)); err != nil {
			t.Fatalf("release the migration lock: %v", err)
		}
		if err := db.MigrateUp(ctx); err != nil {
			t.Fatalf("MigrateUp after the lock was released: %v", err)
		}
		if !tableExists(t, db, "products") {
			t.Error("products table missing after MigrateUp")
		}
	})
}

// TestMissingSchemaIsNamed: a database nobody migrated is reported as such,
// with the command that fixes it, by the readiness check and by every
// query, and the check itself creates nothing.
func TestMissingSchemaIsNamed(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		ctx := context.Background()
		db := freshDB(t, tg.dsn)
		err := db.CheckSchema(ctx)
		if !errors.Is(err, domain.ErrSourceNotMigrated) || !strings.Contains(err.Error(), "run: trustchain migrate up") {
			t.Fatalf("CheckSchema on an empty database = %v", err)
		}
		if tableExists(t, db, "bun_migrations") {
			t.Fatal("the check created the migration table")
		}
		req, err := domain.NewPageRequest(0, 1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = mysql.NewRepository(db).ListProducts(ctx, req)
		if !errors.Is(err, domain.ErrSourceNotMigrated) {
			t.Fatalf("ListProducts on an empty database = %v, want ErrSourceNotMigrated", err)
		}
		if err := db.MigrateUp(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.CheckSchema(ctx); err != nil {
			t.Fatalf("CheckSchema after migrate up = %v", err)
		}
		exec(t, db, "DELETE FROM bun_migrations WHERE name = (SELECT name FROM (SELECT MAX(name) AS name FROM bun_migrations) AS last)")
		ms, err := migrations.Load()
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("1 of %d migrations pending", len(ms.Sorted()))
		if err := db.CheckSchema(ctx); !errors.Is(err, domain.ErrSourceNotMigrated) || !strings.Contains(err.Error(), want) {
			t.Fatalf("CheckSchema with one migration pending = %v", err)
		}
	})
}
