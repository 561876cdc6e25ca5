package catalog

import "net/url"

// SourceCheck judges a URL the centre would connect to: the main or sub
// RTSP URL of a point it pulls itself. A non-nil error refuses the point
// with a *ValidationError on that URL's field, carrying the error's text,
// so the text must never contain the URL's password. It may resolve names
// (the catalog never calls it while holding its write lock) and should
// bound the time it takes.
type SourceCheck func(rawURL string) error

// Option configures a Catalog.
type Option func(*Catalog)

// WithSourceCheck makes Create, Update and ImportPoints refuse a point
// whose RTSP URL check refuses. Only points the centre pulls itself are
// checked: the camera of a point bound to an edge agent is on the agent's
// LAN, and the agent's own camera networks decide whether it connects.
// Update checks only the URLs a change makes the centre pull anew, so a
// rename does not resolve the camera's name again.
func WithSourceCheck(f SourceCheck) Option {
	return func(c *Catalog) { c.checkSource = f }
}

// pulledURLs returns the fields and URLs of p's sources the centre pulls.
func pulledURLs(p *Point) (fields, urls []string) {
	if p.Agent != "" {
		return nil, nil
	}
	if p.Main.Type == SourceRTSP {
		fields, urls = append(fields, "main.url"), append(urls, p.Main.URL)
	}
	if p.Sub != nil && p.Sub.Type == SourceRTSP {
		fields, urls = append(fields, "sub.url"), append(urls, p.Sub.URL)
	}
	return fields, urls
}

// checkSources checks the URLs of next the centre would pull that prev
// (nil for a new point) did not already pull, skipping those in done, and
// adds every URL it checked to done.
func (c *Catalog) checkSources(prev, next *Point, done map[string]bool) *ValidationError {
	if c.checkSource == nil {
		return nil
	}
	pulled := map[string]string{} // field → URL prev pulls
	if prev != nil {
		fields, urls := pulledURLs(prev)
		for i, f := range fields {
			pulled[f] = urls[i]
		}
	}
	fields, urls := pulledURLs(next)
	for i, u := range urls {
		if done[u] || pulled[fields[i]] == u {
			continue
		}
		if err := c.checkSource(u); err != nil {
			return invalid(fields[i], "%s", err.Error())
		}
		if done != nil {
			done[u] = true
		}
	}
	return nil
}

// precheckUpdate runs the URL check of Update before it takes the write
// lock: a name lookup must not stall every other writer. It returns the
// URLs it found allowed; Update checks under the lock only what a
// concurrent change made different.
func (c *Catalog) precheckUpdate(id string, patch PointPatch) (map[string]bool, error) {
	done := map[string]bool{}
	if c.checkSource == nil {
		return done, nil
	}
	c.mu.RLock()
	cur, ok := c.idx.get(id)
	c.mu.RUnlock()
	if !ok {
		return done, nil
	}
	p := cur.clone()
	patch.apply(&p)
	p.normalize()
	if p.validate() != nil {
		// Update reports the problem itself.
		return done, nil
	}
	if err := c.checkSources(cur, &p, done); err != nil {
		return nil, err
	}
	return done, nil
}

// checkImportSources checks every row's pulled URLs (before the import
// takes the write lock). The verdict depends on scheme, host and port
// only, so each distinct one is checked once: thousands of rows on a few
// camera names cost a few lookups.
func (c *Catalog) checkImportSources(rows []importRow, errs *rowErrors) {
	if c.checkSource == nil {
		return
	}
	seen := map[string]string{} // scheme://host:port → refusal ("" allowed)
	for _, row := range rows {
		fields, urls := pulledURLs(&row.p)
		for i, raw := range urls {
			key := raw
			if u, err := url.Parse(raw); err == nil {
				key = u.Scheme + "://" + u.Host
			}
			msg, ok := seen[key]
			if !ok {
				if err := c.checkSource(raw); err != nil {
					msg = err.Error()
				}
				seen[key] = msg
			}
			if msg != "" {
				errs.add(row.line, importField(fields[i]), msg)
			}
		}
	}
}
