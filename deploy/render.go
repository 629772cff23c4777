// Package deploy renders the kustomize overlays in this folder in-process,
// so the tests, the Istio validation and the promtool checks need neither
// kubectl nor a cluster.
package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Overlays lists the deployable overlays under root (a copy of this folder):
// every overlays/<name> holding a kustomization.yaml, sorted by name.
func Overlays(root string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(root, "overlays", "*", "kustomization.yaml"))
	if err != nil {
		return nil, fmt.Errorf("list overlays: %w", err)
	}
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, filepath.Base(filepath.Dir(m)))
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("list overlays: none under %s", root)
	}
	return names, nil
}

// Render builds the overlay in dir, as kubectl apply -k would.
func Render(dir string) (resmap.ResMap, error) {
	opts := krusty.MakeDefaultOptions()
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", dir, err)
	}
	return m, nil
}

// WriteAll renders every overlay under root into outDir/<overlay>.yaml and
// returns the files written.
func WriteAll(root, outDir string) ([]string, error) {
	names, err := Overlays(root)
	if err != nil {
		return nil, err
	}
	files := make([]string, 0, len(names))
	for _, name := range names {
		m, err := Render(filepath.Join(root, "overlays", name))
		if err != nil {
			return nil, err
		}
		out, err := m.AsYaml()
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", name, err)
		}
		file := filepath.Join(outDir, name+".yaml")
		if err := os.WriteFile(file, out, 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", file, err)
		}
		files = append(files, file)
	}
	return files, nil
}
