package gb28181

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"github.com/tianyan/vms/store"
)

// Errors of device administration.
var (
	ErrDeviceNotFound = errors.New("gb28181: device not found")
	ErrInvalidDevice  = errors.New("gb28181: invalid device change")
)

// deviceRecord is what bbolt holds for a device: what the registry shows plus its own password's
// Digest HA1 (MD5 of id:realm:password), never the password itself.
type deviceRecord struct {
	Device
	HA1      string `json:"ha1,omitempty"`
	HA1Realm string `json:"ha1_realm,omitempty"`
	// NameSet means an admin named it: DeviceInfo from the device no longer renames it.
	NameSet bool `json:"name_set,omitempty"`
}

// loadDevices fills the registry from the store at start. Every device starts offline: it comes back
// online with its next keepalive (if its registration has not expired) or registration.
func (s *Server) loadDevices() error {
	if s.cfg.DB == nil {
		return nil
	}
	return s.cfg.DB.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(store.BucketGBDevices).ForEach(func(k, v []byte) error {
			var rec deviceRecord
			if _, err := store.GetJSON(tx, store.BucketGBDevices, k, &rec); err != nil {
				s.log.Warn("gb28181: skipping unreadable device record", "key", string(k), "err", err)
				return nil
			}
			rec.Device.Online = false
			s.devices.put(rec.Device)
			return nil
		})
	})
}

func getDeviceRecord(tx *bbolt.Tx, id string) (deviceRecord, bool, error) {
	var rec deviceRecord
	ok, err := store.GetJSON(tx, store.BucketGBDevices, []byte(id), &rec)
	return rec, ok, err
}

// saveDevice writes the registry's current view of device id (keeping its password and admin
// name), with hooks in the same transaction.
func (s *Server) saveDevice(id string, hooks ...store.TxHook) error {
	d, ok := s.devices.Get(id)
	if !ok {
		return ErrDeviceNotFound
	}
	if s.cfg.DB == nil {
		return nil
	}
	return s.cfg.DB.Update(func(tx *bbolt.Tx) error {
		rec, _, err := getDeviceRecord(tx, id)
		if err != nil {
			return err
		}
		rec.Device = d
		if err := store.PutJSON(tx, store.BucketGBDevices, []byte(id), rec); err != nil {
			return err
		}
		return store.RunHooks(tx, hooks)
	})
}

// deviceHA1 returns the Digest HA1 of device id's own password for realm, if it has one.
func (s *Server) deviceHA1(id, realm string) (string, bool) {
	if s.cfg.DB == nil {
		return "", false
	}
	var ha1 string
	err := s.cfg.DB.View(func(tx *bbolt.Tx) error {
		rec, ok, err := getDeviceRecord(tx, id)
		if err != nil || !ok {
			return err
		}
		if rec.HA1 != "" && rec.HA1Realm == realm {
			ha1 = rec.HA1
		}
		return nil
	})
	if err != nil {
		s.log.Warn("gb28181: reading device password", "device", id, "err", err)
		return "", false
	}
	return ha1, ha1 != ""
}

func md5HA1(id, realm, password string) string {
	sum := md5.Sum([]byte(id + ":" + realm + ":" + password))
	return hex.EncodeToString(sum[:])
}

// DevicePatch is an admin's change to a device; nil fields stay as they are.
type DevicePatch struct {
	// Name renames the device ("" gives the name back to the device's DeviceInfo).
	Name *string `json:"name,omitempty"`
	// Password sets the device's own Digest password ("" falls back to the default password).
	// It is write-only: nothing ever returns it.
	Password *string `json:"password,omitempty"`
	// StreamTransport is "udp" or "tcp": how its media is asked for.
	StreamTransport *string `json:"stream_transport,omitempty"`
}

// Validate checks the patch.
func (p DevicePatch) Validate() error {
	if p.Name != nil && (len(*p.Name) > 128 || !utf8.ValidString(*p.Name)) {
		return fmt.Errorf("%w: name too long or not UTF-8", ErrInvalidDevice)
	}
	if p.Password != nil && (len(*p.Password) > 128 || strings.ContainsAny(*p.Password, "\"\\\r\n")) {
		return fmt.Errorf("%w: password too long or with quotes or line breaks", ErrInvalidDevice)
	}
	if p.StreamTransport != nil && *p.StreamTransport != "udp" && *p.StreamTransport != "tcp" {
		return fmt.Errorf("%w: stream transport must be udp or tcp", ErrInvalidDevice)
	}
	return nil
}

// PrepareDevice records a device before it first registers (an admin giving it its own password
// ahead of time). An existing device is left as it is apart from the patch.
func (s *Server) PrepareDevice(id string, p DevicePatch, hooks ...store.TxHook) (Device, error) {
	if !IsID(id) {
		return Device{}, fmt.Errorf("%w: device ID must be 20 digits", ErrInvalidDevice)
	}
	s.devices.Update(id, true, func(*Device) DeviceEventKind { return 0 })
	return s.UpdateDevice(id, p, hooks...)
}

// UpdateDevice applies an admin's patch to device id, with hooks (the audit record) in the same
// transaction.
func (s *Server) UpdateDevice(id string, p DevicePatch, hooks ...store.TxHook) (Device, error) {
	if err := p.Validate(); err != nil {
		return Device{}, err
	}
	if _, ok := s.devices.Get(id); !ok {
		return Device{}, ErrDeviceNotFound
	}
	if s.cfg.DB != nil {
		err := s.cfg.DB.Update(func(tx *bbolt.Tx) error {
			rec, _, err := getDeviceRecord(tx, id)
			if err != nil {
				return err
			}
			if d, ok := s.devices.Get(id); ok {
				rec.Device = d
			}
			if p.Name != nil {
				rec.Name = *p.Name
				rec.NameSet = *p.Name != ""
			}
			if p.StreamTransport != nil {
				rec.StreamTransport = *p.StreamTransport
			}
			if p.Password != nil {
				rec.HA1, rec.HA1Realm = "", ""
				if *p.Password != "" {
					rec.HA1, rec.HA1Realm = md5HA1(id, s.cfg.Realm, *p.Password), s.cfg.Realm
				}
			}
			if err := store.PutJSON(tx, store.BucketGBDevices, []byte(id), rec); err != nil {
				return err
			}
			return store.RunHooks(tx, hooks)
		})
		if err != nil {
			return Device{}, err
		}
	}
	s.devices.Update(id, false, func(d *Device) DeviceEventKind {
		if p.Name != nil {
			d.Name = *p.Name
		}
		if p.StreamTransport != nil {
			d.StreamTransport = *p.StreamTransport
		}
		return DeviceUpdated
	})
	d, _ := s.devices.Get(id)
	return d, nil
}

// nameSetByAdmin reports whether an admin named device id (then DeviceInfo does not rename it).
func (s *Server) nameSetByAdmin(id string) bool {
	if s.cfg.DB == nil {
		return false
	}
	set := false
	s.cfg.DB.View(func(tx *bbolt.Tx) error {
		rec, _, err := getDeviceRecord(tx, id)
		set = err == nil && rec.NameSet
		return nil
	})
	return set
}

// DeleteDevice forgets device id (its registration and password). Its channels' points stay in the
// catalog, marked as gone by the catalog sync. A device that registers again comes back.
func (s *Server) DeleteDevice(id string, hooks ...store.TxHook) error {
	if _, ok := s.devices.Get(id); !ok {
		return ErrDeviceNotFound
	}
	if s.cfg.DB != nil {
		err := s.cfg.DB.Update(func(tx *bbolt.Tx) error {
			if err := tx.Bucket(store.BucketGBDevices).Delete([]byte(id)); err != nil {
				return err
			}
			return store.RunHooks(tx, hooks)
		})
		if err != nil {
			return err
		}
	}
	s.devices.Remove(id)
	return nil
}

// ListDevices returns every known device, by ID.
func (s *Server) ListDevices() []Device { return s.devices.List() }

// Device returns device id.
func (s *Server) Device(id string) (Device, bool) { return s.devices.Get(id) }

// ListRules returns the mapping rules in the order they are tried.
func (s *Server) ListRules() []Rule { return s.rules.List() }
