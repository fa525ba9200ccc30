// Package clientip finds the address of the client behind a request: the
// address that connected, or, when that is a trusted reverse proxy, the
// address the proxy says it forwarded for. The address is evidence in
// consent records and the access log, and the key of rate limits, so a
// client must not be able to choose it: X-Forwarded-For is read only from
// proxies the operator trusts.
package clientip

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver knows which proxies to believe.
type Resolver struct {
	Trusted []netip.Prefix
}

// Parse reads a comma-separated list of addresses and CIDR prefixes
// ("127.0.0.1, 10.0.0.0/8").
func Parse(list string) (Resolver, error) {
	var r Resolver
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return r, err
			}
			s = netip.PrefixFrom(a, a.BitLen()).String()
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return r, err
		}
		r.Trusted = append(r.Trusted, p.Masked())
	}
	return r, nil
}

func (r Resolver) trusted(a netip.Addr) bool {
	for _, p := range r.Trusted {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// IP returns the client's address. Behind trusted proxies it is the last
// address in X-Forwarded-For that is not itself a trusted proxy.
func (r Resolver) IP(req *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	a = a.Unmap()
	if !r.trusted(a) {
		return a
	}
	hops := strings.Split(strings.Join(req.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return a
		}
		h = h.Unmap()
		if !r.trusted(h) {
			return h
		}
		a = h
	}
	return a
}

// Direct reports whether the request came straight from a client on this
// machine, not through any proxy.
func Direct(req *http.Request) bool {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback() && req.Header.Get("X-Forwarded-For") == "" &&
		req.Header.Get("Forwarded") == "" && req.Header.Get("X-Real-Ip") == ""
}

// LimitKey is the rate-limit key of an address: the address itself for
// IPv4, its /64 for IPv6, where one client easily holds a whole /64.
func LimitKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
