package mysql_test

import (
	"context"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/trustchain/trustchain/adapters/mysql"
	"github.com/trustchain/trustchain/internal/testkit/mysqltest"
)

// TestOpenKeepsPasswordOutOfErrors feeds Open DSNs that fail at each stage
// and checks that the error never shows the password, not even a piece.
// Port 1 on loopback refuses connections, so no test needs a server.
func TestOpenKeepsPasswordOutOfErrors(t *testing.T) {
	tests := []struct {
		name    string
		dsn     string
		secrets []string
	}{
		{
			name:    "bad parameter",
			dsn:     "app:s3cr3t-pw@tcp(127.0.0.1:1)/shop?parseTime=maybe",
			secrets: []string{"s3cr3t-pw"},
		},
		{
			name: "password with a slash and no database",
			// The driver takes everything after the last slash for the
			// database name and quotes it when it cannot unescape it.
			dsn:     "app:s3cr3t/pw%zz@tcp(127.0.0.1:1)",
			secrets: []string{"s3cr3t", "pw%zz"},
		},
		{
			name:    "password with an at sign",
			dsn:     "app:s3cr3t@pw@tcp(127.0.0.1:1)shop",
			secrets: []string{"s3cr3t", "pw@"},
		},
		{
			name:    "unreachable server",
			dsn:     "app:s3cr3t-pw@tcp(127.0.0.1:1)/shop",
			secrets: []string{"s3cr3t-pw"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			db, err := mysql.Open(tt.dsn, mysql.PoolConfig{})
			if err == nil {
				_, err = db.Connect(ctx)
				_ = db.Close()
			}
			if err == nil {
				t.Fatal("Open and Connect succeeded; want an error")
			}
			for _, secret := range tt.secrets {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("Open error %q shows %q from the password", err, secret)
				}
			}
		})
	}
}

// TestOpenExplainsDSNWithoutPassword: with no password to hide, the driver's
// own reason is the most useful thing to show.
func TestOpenExplainsDSNWithoutPassword(t *testing.T) {
	_, err := mysql.Open("app@tcp(127.0.0.1:1)/shop?parseTime=maybe", mysql.PoolConfig{})
	if err == nil || !strings.Contains(err.Error(), "maybe") {
		t.Errorf("Open error = %v, want the driver's reason naming the bad value", err)
	}
}

func TestOpen(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg target) {
		dsn := mysqltest.FreshSchema(t, tg.dsn)
		ctx := context.Background()

		t.Run("forces parseTime", func(t *testing.T) {
			cfg, err := gomysql.ParseDSN(dsn)
			if err != nil {
				t.Fatal(err)
			}
			cfg.ParseTime = false
			db := open(t, cfg.FormatDSN())
			var got time.Time
			if err := db.Bun().QueryRowContext(ctx, "SELECT CAST('2025-07-01 12:30:00' AS DATETIME)").Scan(&got); err != nil {
				t.Fatalf("scan DATETIME into time.Time: %v", err)
			}
			if want := time.Date(2025, 7, 1, 12, 30, 0, 0, time.UTC); !got.Equal(want) {
				t.Errorf("DATETIME = %v, want %v", got, want)
			}
		})

		// These DSNs and pools would work but for the one mistake each has,
		// so only Open's own checks can refuse them.
		t.Run("refuses", func(t *testing.T) {
			noDatabase, err := gomysql.ParseDSN(dsn)
			if err != nil {
				t.Fatal(err)
			}
			noDatabase.DBName = ""
			tests := []struct {
				name string
				dsn  string
				pool mysql.PoolConfig
			}{
				{name: "DSN naming no database", dsn: noDatabase.FormatDSN()},
				{name: "negative MaxOpenConns", dsn: dsn, pool: mysql.PoolConfig{MaxOpenConns: -1}},
				{name: "negative MaxIdleConns", dsn: dsn, pool: mysql.PoolConfig{MaxIdleConns: -1}},
				{name: "negative ConnMaxLifetime", dsn: dsn, pool: mysql.PoolConfig{ConnMaxLifetime: -time.Second}},
				{name: "negative ConnMaxIdleTime", dsn: dsn, pool: mysql.PoolConfig{ConnMaxIdleTime: -time.Second}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if db, err := mysql.Open(tt.dsn, tt.pool); err == nil {
						_ = db.Close()
						t.Error("Open succeeded; want an error")
					}
				})
			}
		})

		t.Run("pool", func(t *testing.T) {
			tests := []struct {
				name     string
				pool     mysql.PoolConfig
				wantOpen int
			}{
				{name: "zero takes the defaults", pool: mysql.PoolConfig{}, wantOpen: mysql.DefaultPoolConfig().MaxOpenConns},
				{name: "set", pool: mysql.PoolConfig{MaxOpenConns: 3}, wantOpen: 3},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					db, err := mysql.Open(dsn, tt.pool)
					if err != nil {
						t.Fatalf("Open: %v", err)
					}
					defer db.Close()
					if got := db.Bun().Stats().MaxOpenConnections; got != tt.wantOpen {
						t.Errorf("MaxOpenConnections = %d, want %d", got, tt.wantOpen)
					}
				})
			}
		})

		t.Run("ping", func(t *testing.T) {
			db, err := mysql.Open(dsn, mysql.PoolConfig{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if version, err := db.Connect(ctx); err != nil || version == "" {
				t.Errorf("Connect = %q, %v; want the server's version", version, err)
			}
			if err := db.Ping(ctx); err != nil {
				t.Errorf("Ping on an open pool: %v", err)
			}
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := db.Ping(ctx); err == nil {
				t.Error("Ping on a closed pool succeeded; want an error")
			}
		})
	})
}

func TestSilentServerCannotHang(t *testing.T) {
	addr := mysqltest.SilentServer(t)
	t.Run("Open does no I/O", func(t *testing.T) {
		start := time.Now()
		db, err := mysql.Open("app:pw@tcp("+addr+")/shop", mysql.PoolConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if took := time.Since(start); took > time.Second {
			t.Fatalf("Open took %v against a silent server", took)
		}
	})
	t.Run("Connect gives up at the deadline", func(t *testing.T) {
		db, err := mysql.Open("app:pw@tcp("+addr+")/shop", mysql.PoolConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := db.Connect(ctx); err == nil {
			t.Fatal("Connect to a silent server succeeded")
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("Connect took %v past its 300ms deadline", took)
		}
	})
	t.Run("the DSN's own timeouts win", func(t *testing.T) {
		// No deadline on the context at all: only the DSN bounds the call.
		db, err := mysql.Open("app:pw@tcp("+addr+")/shop?readTimeout=300ms&timeout=300ms", mysql.PoolConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		start := time.Now()
		if _, err := db.Connect(context.Background()); err == nil {
			t.Fatal("Connect to a silent server succeeded")
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("Connect took %v; the DSN's 300ms read timeout was not kept", took)
		}
	})
}
