import pytest
from django.core import mail

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-demo-password"


@pytest.fixture
def ann(brokerage, django_user_model):
    user = django_user_model.objects.get(email="ann@example.com")
    user.set_password(PASSWORD)
    user.save()
    return user


def test_it_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_agent_logs_in_with_their_email(client, ann):
    response = client.post("/accounts/login/", {"login": "ann@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_a_wrong_password_is_refused(client, ann):
    response = client.post("/accounts/login/", {"login": "ann@example.com", "password": "nope"})
    assert response.status_code == 200 and "not correct" in response.content.decode()
    assert client.get("/").status_code == 302


def test_nobody_can_sign_themselves_up(client):
    response = client.post("/accounts/signup/", {"email": "x@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert "Sign Up Closed" in response.content.decode()


def test_password_reset_sends_an_email(client, ann):
    response = client.post("/accounts/password/reset/", {"email": "ann@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and "ann@example.com" in mail.outbox[0].to


def test_logging_out_ends_the_session(client, ann):
    client.force_login(ann)
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302
