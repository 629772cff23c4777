package app

// Default addresses. The deploy manifests are tested against these.
const (
	DefaultListenAddr      = ":8080"
	DefaultAdminListenAddr = ":9090"
)
