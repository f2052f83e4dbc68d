package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/berth-registry/berth/config"
	"github.com/berth-registry/berth/storage/rediscache"
	"github.com/redis/go-redis/v9"
)

// openSharedCache connects to the redis section when
// storage.cache.blobdescriptor is redis, and returns nil otherwise. A
// Redis that does not answer at start is an error: the operator asked for
// a shared cache, and instances without it would hold a weaker guarantee
// than the others believe.
func openSharedCache(ctx context.Context, cfg *config.Config, log *slog.Logger) (*rediscache.Cache, error) {
	if cfg.Storage.Cache.BlobDescriptor != "redis" {
		if len(cfg.Redis.Addresses()) > 0 {
			log.Warn("redis is configured but storage.cache.blobdescriptor is not redis: redis is not used")
		}
		return nil, nil
	}
	opts, err := redisOptions(cfg.Redis)
	if err != nil {
		return nil, placeKey(cfg, "redis.tls", err)
	}
	ctx, cancel := context.WithTimeout(ctx, redisStartTimeout(opts))
	defer cancel()
	c, err := rediscache.New(ctx, redis.NewUniversalClient(opts), log)
	if err != nil {
		err = fmt.Errorf("redis at %s does not answer (storage.cache.blobdescriptor is redis): %w", strings.Join(opts.Addrs, ", "), err)
		return nil, placeKey(cfg, "redis", err)
	}
	log.Info("shared cache", "redis", strings.Join(opts.Addrs, ","), "mastername", opts.MasterName)
	return c, nil
}

// redisStartTimeout bounds the check at start: a dial and a read, twice.
func redisStartTimeout(o *redis.UniversalOptions) (d time.Duration) {
	dial, read := o.DialTimeout, o.ReadTimeout
	if dial <= 0 {
		dial = 5 * time.Second
	}
	if read <= 0 {
		read = 3 * time.Second
	}
	return 2 * (dial + read)
}

// placeKey prefixes err with where key was set, as config errors are.
func placeKey(cfg *config.Config, key string, err error) error {
	if where := cfg.Where(key); where != "" {
		return fmt.Errorf("%s: %s: %w", where, key, err)
	}
	return fmt.Errorf("%s: %w", key, err)
}

// redisOptions maps the redis section (Distribution 3's keys, and
// Distribution 2's addr, pool and tls.enabled) onto go-redis's universal
// options: several addrs make a cluster client, a mastername a sentinel
// one.
func redisOptions(r config.Redis) (*redis.UniversalOptions, error) {
	o := &redis.UniversalOptions{
		Addrs:                 r.Addresses(),
		ClientName:            r.ClientName,
		DB:                    r.DB,
		Protocol:              r.Protocol,
		Username:              r.Username,
		Password:              r.Password,
		SentinelUsername:      r.SentinelUsername,
		SentinelPassword:      r.SentinelPassword,
		MasterName:            r.MasterName,
		MaxRetries:            r.MaxRetries,
		MinRetryBackoff:       r.MinRetryBackoff,
		MaxRetryBackoff:       r.MaxRetryBackoff,
		DialTimeout:           r.DialTimeout,
		ReadTimeout:           r.ReadTimeout,
		WriteTimeout:          r.WriteTimeout,
		ContextTimeoutEnabled: r.ContextTimeoutEnabled,
		PoolFIFO:              r.PoolFIFO,
		PoolSize:              r.PoolSize,
		PoolTimeout:           r.PoolTimeout,
		MinIdleConns:          r.MinIdleConns,
		MaxIdleConns:          r.MaxIdleConns,
		MaxActiveConns:        r.MaxActiveConns,
		ConnMaxIdleTime:       r.ConnMaxIdleTime,
		ConnMaxLifetime:       r.ConnMaxLifetime,
		MaxRedirects:          r.MaxRedirects,
		ReadOnly:              r.ReadOnly,
		RouteByLatency:        r.RouteByLatency,
		RouteRandomly:         r.RouteRandomly,
		DisableIdentity:       r.DisableIdentity,
		IdentitySuffix:        r.IdentitySuffix,
		UnstableResp3:         r.UnstableResp3,
	}
	// Distribution 2's pool section, where its go-redis keys are unset.
	if o.MaxIdleConns == 0 {
		o.MaxIdleConns = r.Pool.MaxIdle
	}
	if o.MaxActiveConns == 0 {
		o.MaxActiveConns = r.Pool.MaxActive
	}
	if o.ConnMaxIdleTime == 0 {
		o.ConnMaxIdleTime = r.Pool.IdleTimeout
	}
	t := r.TLS
	if !t.Enabled && t.Certificate == "" && t.Key == "" && len(t.RootCAs) == 0 {
		return o, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if (t.Certificate == "") != (t.Key == "") {
		return nil, errors.New("certificate and key go together")
	}
	if t.Certificate != "" {
		cert, err := tls.LoadX509KeyPair(t.Certificate, t.Key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if len(t.RootCAs) > 0 {
		pool, err := certPool(t.RootCAs)
		if err != nil {
			return nil, fmt.Errorf("rootcas: %w", err)
		}
		tc.RootCAs = pool
	}
	o.TLSConfig = tc
	return o, nil
}
