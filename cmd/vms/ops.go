package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tianyan/vms/audit"
	"github.com/tianyan/vms/server"
	"github.com/tianyan/vms/store"
)

// backupCmd: vms backup --server URL --out FILE, authenticated by
// VMS_TOKEN, or --user with the password from VMS_PASSWORD (never a flag:
// flags show up in ps and shell history).
func backupCmd(args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	srv := fs.String("server", envOr("VMS_SERVER", "http://127.0.0.1:8080"), "base URL of the running server (env VMS_SERVER)")
	out := fs.String("out", "", "file to write the backup to (required)")
	user := fs.String("user", "", "admin username; password from VMS_PASSWORD (default: token from VMS_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("backup: --out FILE is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := &server.BackupClient{BaseURL: *srv, Token: os.Getenv("VMS_TOKEN")}
	if *user != "" {
		if err := c.Login(ctx, *user, os.Getenv("VMS_PASSWORD")); err != nil {
			return err
		}
	}
	if c.Token == "" {
		return errors.New("backup: set VMS_TOKEN, or --user with VMS_PASSWORD")
	}
	n, err := c.Backup(ctx, *out)
	if err != nil {
		return err
	}
	fmt.Printf("backup written: %s (%d bytes)\n", *out, n)
	return nil
}

// restoreCmd: vms restore --in FILE --data DIR, with the server stopped.
func restoreCmd(args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	in := fs.String("in", "", "backup file written by vms backup (required)")
	data := fs.String("data", envOr("VMS_DATA", server.Defaults().DataDir), "data directory of the stopped server (env VMS_DATA)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return errors.New("restore: --in FILE is required")
	}
	prev, err := store.Restore(*data, *in)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w (stop the server first)", err)
	}
	if err != nil {
		return err
	}
	fmt.Printf("restored %s into %s; the previous database is kept as %s\n", *in, *data, filepath.Base(prev))
	return nil
}

// auditCmd: vms audit verify [--data DIR | --file BACKUP].
func auditCmd(args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: vms audit verify [--data DIR | --file BACKUP]")
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	data := fs.String("data", envOr("VMS_DATA", server.Defaults().DataDir), "data directory of a stopped server (env VMS_DATA)")
	file := fs.String("file", "", "a database file instead, e.g. a backup")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	path := *file
	if path == "" {
		path = filepath.Join(*data, store.FileName)
	}
	db, err := store.OpenFile(path)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w: a server is running on it; ask it instead: GET /api/v1/audit/verify", err)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	l, err := audit.New(db, audit.Options{})
	if err != nil {
		return err
	}
	n, err := l.Verify()
	if err != nil {
		return fmt.Errorf("audit chain NOT intact after %d good records: %w", n, err)
	}
	seq, hash, err := l.Head()
	if err != nil {
		return err
	}
	fmt.Printf("audit chain intact: %d records, head seq %d hash %s\n", n, seq, hash)
	return nil
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}
