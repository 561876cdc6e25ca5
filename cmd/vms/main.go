// Command vms is Tianyan's central server.
//
//	vms serve   run the server (flags, VMS_* env, or --config YAML)
//	vms demo    run a self-contained demo with simulated cameras
//	vms backup  download a consistent backup from a running server
//	vms restore put a backup in place of a stopped server's database
//	vms audit verify  check the audit log's hash chain
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tianyan/vms/server"
)

func usage() {
	fmt.Fprintln(os.Stderr, `usage: vms <command> [flags]

commands:
  serve   run the central server
  demo    run a demo: server plus simulated cameras, no config needed
  backup  --out FILE: consistent backup of a running server (VMS_TOKEN, or --user with VMS_PASSWORD)
  restore --in FILE --data DIR: restore a backup (server stopped)
  audit verify [--data DIR | --file F]: check the audit hash chain

run "vms <command> -h" for the flags of a command`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log)
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:], log)
	case "demo":
		err = demoCmd(os.Args[2:], log)
	case "backup":
		err = backupCmd(os.Args[2:])
	case "restore":
		err = restoreCmd(os.Args[2:])
	case "audit":
		err = auditCmd(os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		log.Error("vms", "err", err)
		os.Exit(1)
	}
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func serve(args []string, log *slog.Logger) error {
	cfg, _, err := loadConfig("serve", args, server.Defaults())
	if err != nil {
		return err
	}
	cfg.Logger = log
	app, err := server.Start(cfg)
	if err != nil {
		return err
	}
	stopProfiler := startProfiler(log)
	defer stopProfiler()
	if app.GeneratedAdminPassword != "" {
		// Printed once, to the terminal only; it is stored hashed.
		fmt.Printf("\nCreated user admin with password: %s\n(set VMS_ADMIN_PASSWORD to choose one; change it after logging in)\n\n", app.GeneratedAdminPassword)
	}
	ctx, stop := signalContext()
	defer stop()
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-app.Wait():
	}
	app.Close(context.Background())
	return err
}
