package casecret

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/weft-mesh/weft/internal/controlplane/ca"
)

func newCA(t *testing.T, st *Store) *ca.CA {
	t.Helper()
	c, err := ca.New(ca.Options{RootStore: st})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func secret(t *testing.T, client *fake.Clientset) *corev1.Secret {
	t.Helper()
	s, err := client.CoreV1().Secrets(DefaultNamespace).Get(t.Context(), DefaultName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFirstReplicaCreatesOthersRead: the first replica generates the root
// into the Secret, the next one signs with the same root.
func TestFirstReplicaCreatesOthersRead(t *testing.T) {
	client := fake.NewClientset()
	first := newCA(t, New(client, "", ""))
	s := secret(t, client)
	if len(s.Data[CertKey]) == 0 || len(s.Data[KeyKey]) == 0 {
		t.Fatalf("Secret data keys %v, want %s and %s", s.Data, CertKey, KeyKey)
	}
	second := newCA(t, New(client, "", ""))
	if !second.Certificate().Equal(first.Certificate()) {
		t.Error("the second replica signs with another root")
	}
}

// TestCreateConflict: another replica creates the Secret between this
// one's read and create; this one then uses the other's root.
func TestCreateConflict(t *testing.T) {
	client := fake.NewClientset()
	// The other replica's root and Secret, made elsewhere.
	otherClient := fake.NewClientset()
	other := newCA(t, New(otherClient, "", ""))
	otherSecret := secret(t, otherClient)
	creates := 0
	client.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		creates++
		if err := client.Tracker().Add(otherSecret); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, DefaultName)
	})
	mine := newCA(t, New(client, "", ""))
	if creates != 1 {
		t.Fatalf("%d creates, want 1", creates)
	}
	if !mine.Certificate().Equal(other.Certificate()) {
		t.Error("after losing the race to create the Secret, the replica does not use the winner's root")
	}
}

func TestBrokenSecret(t *testing.T) {
	client := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: DefaultName, Namespace: DefaultNamespace},
		Data: map[string][]byte{CertKey: []byte("not a certificate")}})
	if _, err := ca.New(ca.Options{RootStore: New(client, "", "")}); err == nil {
		t.Error("a Secret without a key was accepted")
	}
	client = fake.NewClientset()
	client.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, DefaultName, errors.New("RBAC"))
	})
	if _, err := ca.New(ca.Options{RootStore: New(client, "", "")}); !apierrors.IsForbidden(errors.Unwrap(err)) {
		t.Errorf("error %v, want the API's Forbidden", err)
	}
}

// TestTokenKeyShared: the first replica adds the join-token key to the
// Secret, the next reads the same one, so a token issued by one verifies on
// the other.
func TestTokenKeyShared(t *testing.T) {
	client := fake.NewClientset()
	a, b := New(client, "", ""), New(client, "", "")
	newCA(t, a)
	ka, err := a.TokenKey()
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.TokenKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(ka) != tokenKeySize || string(ka) != string(kb) {
		t.Fatalf("replicas got different join-token keys (%d, %d bytes)", len(ka), len(kb))
	}
	if got := secret(t, client).Data[TokenKeyKey]; string(got) != string(ka) {
		t.Fatal("the key is not kept in the Secret")
	}
	if s := secret(t, client); len(s.Data[CertKey]) == 0 || len(s.Data[KeyKey]) == 0 {
		t.Fatal("adding the token key lost the root")
	}
	if _, err := New(fake.NewClientset(), "", "").TokenKey(); err == nil {
		t.Error("no Secret: want an error")
	}
}
