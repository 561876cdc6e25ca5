// Package manscdp reads and writes the MANSCDP XML bodies that GB/T 28181
// carries in SIP MESSAGE and NOTIFY requests: keepalives, catalog queries and
// answers, device info and status, device control (PTZ, keyframe, reboot),
// presets and alarms.
//
// Parsing is deliberately tolerant because real devices disagree with the
// standard and with each other: bodies come in GB2312/GBK/GB18030 with or
// without an XML prolog saying so, element names vary in case between
// vendors, numbers are empty, coordinates are quoted strings, status words
// differ ("ON", "ONLINE", "OK"), and some devices append junk after the root
// element. Parsing is also bounded: bodies above MaxBodySize and documents
// nested deeper than a catalog ever is are refused, and bad input never
// panics.
//
// The package owns only the message formats; it sends nothing and knows no
// SIP.
package manscdp
