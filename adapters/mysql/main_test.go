package mysql_test

import (
	"os"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestMain(m *testing.M) {
	// go-mysql-server logs every connection at info level through logrus's
	// global logger, and warns about settings of its own that mean nothing
	// here; its errors still show.
	logrus.SetLevel(logrus.ErrorLevel)
	os.Exit(m.Run())
}
