package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
)

// Environment variables of the InfluxDB 2.x that scripts/testbed.sh starts
// beside 1.8.
const (
	EnvInflux2URL     = "METRICPIPE_TEST_INFLUX2_URL"
	EnvInflux2Org     = "METRICPIPE_TEST_INFLUX2_ORG"
	EnvInflux2Token   = "METRICPIPE_TEST_INFLUX2_TOKEN" // the operator token of its setup
	EnvInflux2Version = "METRICPIPE_TEST_INFLUX2_VERSION"
)

// Influx is one InfluxDB of the test bed, as the services are configured
// for it: 1.8 takes buckets "db/rp", no org and no token; 2.x takes an org,
// a bucket and a token.
type Influx struct {
	Name  string // "1.8" or "2.7": for subtest names
	URL   string
	Org   string
	Token string // with every permission; see WriteToken for less
	V2    bool
}

// Influxes returns the test bed's InfluxDBs: 1.8, and 2.x (which `make
// test` starts; without it the test fails under
// METRICPIPE_TEST_REQUIRE_INTEGRATION, else runs on 1.8 alone).
func Influxes(t testing.TB) []Influx {
	t.Helper()
	v1 := Influx{Name: "1.8", URL: InfluxURL(t)}
	if os.Getenv(EnvInflux2URL) == "" && os.Getenv(EnvRequire) != "1" {
		t.Logf("%s is not set: InfluxDB 2.x not tested", EnvInflux2URL)
		return []Influx{v1}
	}
	v2 := Influx{Name: "2.7", URL: need(t, EnvInflux2URL), Org: need(t, EnvInflux2Org), Token: need(t, EnvInflux2Token), V2: true}
	return []Influx{v1, v2}
}

// ServiceFlags returns the --influx-* flags that point a service at bucket.
func (i Influx) ServiceFlags(bucket, token string) []string {
	args := []string{"--influx-url", i.URL, "--influx-bucket", bucket}
	if i.V2 {
		args = append(args, "--influx-org", i.Org, "--influx-token", token)
	}
	return args
}

// CreateBucket creates a fresh bucket (a database on 1.8), dropped when the
// test ends, and returns its name as the services take it.
func (i Influx) CreateBucket(t testing.TB, name string) string {
	t.Helper()
	if !i.V2 {
		return CreateDatabase(t, i.URL, name)
	}
	client := influxdb2.NewClient(i.URL, i.Token)
	defer client.Close()
	ctx := t.Context()
	org, err := client.OrganizationsAPI().FindOrganizationByName(ctx, i.Org)
	if err != nil {
		t.Fatalf("find org %s: %v", i.Org, err)
	}
	b, err := client.BucketsAPI().CreateBucketWithName(ctx, org, name)
	if err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		c := influxdb2.NewClient(i.URL, i.Token)
		defer c.Close()
		if err := c.BucketsAPI().DeleteBucket(context.Background(), b); err != nil {
			t.Logf("delete bucket %s: %v", name, err)
		}
	})
	return name
}

// WriteToken returns a token that may write to bucket and nothing else
// (2.x), the least privilege the services need; "" on 1.8.
func (i Influx) WriteToken(t testing.TB, bucket string) string {
	t.Helper()
	if !i.V2 {
		return ""
	}
	client := influxdb2.NewClient(i.URL, i.Token)
	defer client.Close()
	ctx := t.Context()
	org, err := client.OrganizationsAPI().FindOrganizationByName(ctx, i.Org)
	if err != nil {
		t.Fatalf("find org %s: %v", i.Org, err)
	}
	b, err := client.BucketsAPI().FindBucketByName(ctx, bucket)
	if err != nil {
		t.Fatalf("find bucket %s: %v", bucket, err)
	}
	// The v2 API's authorization: one write permission on one bucket.
	body, _ := json.Marshal(map[string]any{
		"orgID":       *org.Id,
		"description": "metricpipe test: write " + bucket,
		"permissions": []map[string]any{{"action": "write", "resource": map[string]any{"type": "buckets", "id": *b.Id, "orgID": *org.Id}}},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, i.URL+"/api/v2/authorizations", bytes.NewReader(body))
	req.Header.Set("Authorization", "Token "+i.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("create write token: %v", err)
	}
	defer resp.Body.Close()
	var auth struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&auth); err != nil || resp.StatusCode != http.StatusCreated || auth.Token == "" {
		t.Fatalf("create write token: HTTP %d, %v", resp.StatusCode, err)
	}
	return auth.Token
}

// Version asks the server for its version.
func (i Influx) Version(t testing.TB) string {
	t.Helper()
	return InfluxVersion(t, i.URL)
}

// Client returns a client with every permission, for queries; the caller
// must Close it.
func (i Influx) Client() influxdb2.Client { return influxdb2.NewClient(i.URL, i.Token) }

// FluxRows runs a Flux query and returns every row's columns by name.
func (i Influx) FluxRows(ctx context.Context, flux string) ([]map[string]any, error) {
	client := i.Client()
	defer client.Close()
	res, err := client.QueryAPI(i.Org).Query(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("flux query: %w", err)
	}
	defer res.Close()
	var rows []map[string]any
	for res.Next() {
		rows = append(rows, res.Record().Values())
	}
	return rows, res.Err()
}

// FluxInt runs a Flux query through /api/v2/query and returns the _value of
// its single row; found is false when the query returned no row.
func (i Influx) FluxInt(ctx context.Context, flux string) (v int64, found bool, err error) {
	rows, err := i.FluxRows(ctx, flux)
	if err != nil || len(rows) == 0 {
		return 0, false, err
	}
	if len(rows) > 1 {
		return 0, false, fmt.Errorf("flux query returned %d rows, want one: %s", len(rows), flux)
	}
	switch x := rows[0]["_value"].(type) {
	case int64:
		return x, true, nil
	case uint64:
		return int64(x), true, nil
	default:
		return 0, false, fmt.Errorf("flux query: _value is %T, want an integer", x)
	}
}
